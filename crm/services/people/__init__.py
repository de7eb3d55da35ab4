"""People: contacts, their interactions and to-dos, merges, stage pins, the lead view and the lists."""
