"""The email benchmark at a tiny scale: it renders and queues through the outbox and measures its floor."""
from bench import email_render


def test_the_email_benchmark_runs_at_a_tiny_scale(tmp_path):
    result = email_render.main(["--messages", "20", "--newsletter", "20", "--json", str(tmp_path / "email.json")])
    assert result["messages"] == 20
    assert result["render_and_queue_s"] > 0 and result["floor_email_message_s"] > 0
    assert result["newsletter_contacts"] == 20 and result["newsletter_queue_s"] > 0 and result["worker_render_per_s"] > 0
    assert (tmp_path / "email.json").exists()
