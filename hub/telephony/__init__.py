"""Telephony adapter: Asterisk AMI in, call facts out.

``ami_parse`` reads the AMI wire format, ``tracker`` is the pure call state machine and ``events``
holds the frozen facts it emits. Nothing here touches the database or the web layer; the intake
into the CRM goes through ``hub.crm.ports`` (later).
"""
