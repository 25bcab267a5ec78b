"""`make status` shows the next runs in the schedule's own time zone, not the API's UTC."""

from stack.launcher import in_schedule_zone

PARIS = {"schedules": [{"schedule": {"cron": "0 6 * * *", "timezone": "Europe/Paris"}}]}


def test_next_runs_read_in_the_schedules_time_zone():
    assert in_schedule_zone("2026-12-07T05:00:00Z", PARIS) == "2026-12-07 06:00 Europe/Paris"
    assert in_schedule_zone("2026-07-07T04:00:00+00:00", PARIS) == (
        "2026-07-07 06:00 Europe/Paris")  # summer time


def test_a_deployment_without_a_zone_reads_in_utc():
    assert in_schedule_zone("2026-12-07T05:00:00+00:00", {}) == "2026-12-07 05:00 UTC"
