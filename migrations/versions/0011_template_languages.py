"""Email templates per language: a template row belongs to one language; existing rows take the shop's language (else en)

Revision ID: 0003_template_languages
Revises: 0003_said
Create Date: 2026-12-05 21:50:00

"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0003_template_languages'
down_revision = '0003_said'
branch_labels = None
depends_on = None

# The languages email templates ship defaults in; a shop language outside them keeps its rows as English.
TEMPLATE_LANGUAGES = ('en', 'nl')


def _shop_language(bind) -> str:
    value = bind.execute(sa.text("SELECT value FROM settings WHERE key = 'shop'")).scalar()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    language = value.get('language') if isinstance(value, dict) else None
    return language if language in TEMPLATE_LANGUAGES else 'en'


def upgrade():
    bind = op.get_bind()
    language = _shop_language(bind)
    with op.batch_alter_table('email_templates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=10), nullable=False, server_default='en'))
        batch_op.drop_constraint('uq_email_templates_key', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_email_templates_key_language'), ['key', 'language'])
    if language != 'en':
        bind.execute(sa.text("UPDATE email_templates SET language = :language"), {"language": language})


def downgrade():
    bind = op.get_bind()
    # Only one version per template survives: the shop's language, else English.
    language = _shop_language(bind)
    bind.execute(sa.text(
        "DELETE FROM email_templates WHERE language <> :language AND key IN "
        "(SELECT key FROM email_templates WHERE language = :language)"), {"language": language})
    bind.execute(sa.text(
        "DELETE FROM email_templates WHERE id NOT IN (SELECT MIN(id) FROM email_templates GROUP BY key)"))
    with op.batch_alter_table('email_templates', schema=None) as batch_op:
        batch_op.drop_constraint('uq_email_templates_key_language', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_email_templates_key'), ['key'])
        batch_op.drop_column('language')
