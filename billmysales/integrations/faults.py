"""Crash-test hooks: ``fault_pause("after_claim")`` sleeps there when ``BMS_FAULT_PAUSES`` asks
("after_claim=5,between_steps=5"), so a test can SIGKILL a worker exactly at that point. Empty in every
real deployment."""
import time

from django.conf import settings


def fault_pause(point: str) -> None:
    seconds = settings.BMS_FAULT_PAUSES.get(point)
    if seconds:
        time.sleep(seconds)
