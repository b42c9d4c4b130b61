"""Call intake: what the core does with the call facts of ``hub.crm.ports``.

Events are published only after the commit of the unit of work that recorded them:

- ``ring`` (``ring.py``): identify the external number, create a lead for an unknown inbound caller
  (``unknown_caller = "auto"``, unless the number is ignored; ``caller_leads.py``), remember who was
  rung, and send the screen-pop (``call.ringing``, ``screen_pop.py``) to the rung agent only, with
  the identification inside.
- ``stop_ringing`` (``answer.py``): ``call.ring_ended`` to the agent whose phone stopped ringing
  while the call goes on unanswered (a queue moved on to the next member): their popup closes.
- ``answer`` (``answer.py``): ``call.answered`` to every user rung for the call (the popups close).
- ``end`` (``end.py``): store the outcome (idempotent on the call key), write a ``call`` timeline
  entry on the person's open deal (single open deal, else the most recently active one, else the
  person's own timeline; ``call_log.py``), a callback task + bell item for a missed inbound call
  (one open task per number), complete that task when an outbound call to the number is answered
  (``callbacks.py``), ``call.ended``.

Each rule is a function of (session, fact, settings, *, unit) → result and schedules nothing; what a
unit of work of several facts shares is its ``CallUnit`` (``unit.py``). ``CallIntake``
(``scheduling.py``, what a channel is handed) hands each fact to the write engine (``hub.writes``),
which group-commits: facts that arrive while a unit of work is running go together into the next one
(rings before the rest, one fact per call at a time so each call's facts keep their order), and pops
a ring before its unit of work. ``call_ringing`` / ``call_answered`` / ``call_ended`` run one fact in
a unit of work of its own. See docs/write-engine.md and docs/decisions.md.
"""

from hub.crm.call_intake.answer import answer, stop_ringing
from hub.crm.call_intake.caller_leads import LEAD_SOURCE, lead_from_call
from hub.crm.call_intake.end import end, unfinished_calls
from hub.crm.call_intake.ring import ring
from hub.crm.call_intake.rows import external_number, is_ignored
from hub.crm.call_intake.scheduling import CallIntake, call_answered, call_ended, call_ringing
from hub.crm.call_intake.screen_pop import pop_payload
from hub.crm.call_intake.unit import DEFAULT_SETTINGS, Agent, CallUnit, UnitOfWork

__all__ = [
    "DEFAULT_SETTINGS", "LEAD_SOURCE", "Agent", "CallIntake", "CallUnit", "UnitOfWork", "answer",
    "call_answered", "call_ended", "call_ringing", "end", "external_number", "is_ignored", "lead_from_call",
    "pop_payload", "ring", "stop_ringing", "unfinished_calls",
]
