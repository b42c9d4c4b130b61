"""E-mail channel: parsing of RFC 5322 letters (parse.py); IMAP intake and SMTP sending come later."""
