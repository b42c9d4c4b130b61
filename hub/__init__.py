"""CRM Hub: telephony and messaging integration hub with a CRM core."""

__version__ = "0.1.0"
