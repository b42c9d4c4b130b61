"""Where the tests' data lives: inside the repository, found from this file (never an absolute path)."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
AMI_FIXTURES = FIXTURES / "ami"
MAIL_FIXTURES = FIXTURES / "mail"
TELEGRAM_FIXTURES = FIXTURES / "telegram"
TWILIO_FIXTURES = FIXTURES / "twilio"
