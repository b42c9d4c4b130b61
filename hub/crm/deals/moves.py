"""Moving a deal through its pipeline: the stage, the result, the loss reason and the next interaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub.crm import events, history
from hub.crm.deals.records import (
    PAST_SLACK,
    deal_dict,
    deal_scope,
    load_deal,
    nullable_datetime,
    require_change,
    visible_deal,
)
from hub.crm.inputs import MAX_NOTE
from hub.crm.models import (
    Stage,
    User,
    utcnow,
)
from hub.crm.pipelines import find_or_make_loss_reason
from hub.crm.timeline import add_entry
from hub.crm.validate import Fields, iso

CLOSED = ("won", "lost")
MAX_RESULT = 5_000



# --- moving through the pipeline ---------------------------------------------------------------------

async def move_deal(session: AsyncSession, actor: User, deal_id: int, data: Any) -> dict[str, Any]:
    """Move to ``stage_id`` (same pipeline) with the result of the last interaction and the next one
    planned; a lost stage needs ``loss_reason`` (an id or a text). A new plan must not be in the past;
    a won or lost deal has none (the plan it had is cleared). Writes a ``stage_change`` entry."""
    deal = await visible_deal(session, actor, deal_id)
    require_change(actor, deal)
    v = Fields(data)
    stage_id = v.id("stage_id", required=True)
    result_text = v.text("result", max_len=MAX_RESULT)
    next_at = nullable_datetime(v, "next_interaction_at", deal.next_interaction_at)
    next_note = v.text("next_interaction_note", max_len=MAX_NOTE, default=deal.next_interaction_note)
    if data.get("next_interaction_at", 0) is None and "next_interaction_note" not in data:
        next_note = ""  # the plan was cleared
    stage = None
    if stage_id is not None:
        stage = await session.get(Stage, stage_id)
        if stage is None:
            v.fail("stage_id", "does not exist")
        elif stage.pipeline_id != deal.pipeline_id:
            v.fail("stage_id", "is not a stage of the deal's pipeline")
    raw_reason = data.get("loss_reason") if isinstance(data, dict) else None
    if isinstance(raw_reason, str) and not raw_reason.strip():
        raw_reason = None
    if stage is not None and stage.kind == "lost" and raw_reason is None:
        v.fail("loss_reason", "is required when a deal is lost")
    planned = next_at is not None and next_at != deal.next_interaction_at  # a plan made in this move
    if planned and stage is not None and stage.kind in CLOSED:
        v.fail("next_interaction_at", "must be empty when the deal is closed")
    elif planned and next_at is not None and next_at < utcnow() - PAST_SLACK:
        v.fail("next_interaction_at", "must not be in the past")
    v.check()
    assert stage is not None
    reason = await find_or_make_loss_reason(session, raw_reason) if stage.kind == "lost" else None
    before = history.deal_values(await deal_dict(session, deal))

    old = deal.stage
    now = utcnow()
    if stage.id != old.id:
        deal.stage_id = stage.id
        deal.stage_changed_at = now
        if stage.kind in CLOSED:
            if old.kind != stage.kind or deal.closed_at is None:
                deal.closed_at = now
        else:
            deal.closed_at = None
    if stage.kind == "lost":
        deal.loss_reason_id = reason.id if reason else None
    else:
        deal.loss_reason_id = None
    if stage.kind in CLOSED:
        next_at, next_note = None, ""
    deal.next_interaction_at, deal.next_interaction_note = next_at, next_note
    deal.updated_at = now
    await session.flush()

    payload = {
        "from_stage": {"id": old.id, "name": old.name, "kind": old.kind},
        "to_stage": {"id": stage.id, "name": stage.name, "kind": stage.kind},
        "result": result_text,
        "next_interaction_at": iso(next_at),
        "next_interaction_note": next_note,
        "loss_reason": {"id": reason.id, "name": reason.name} if reason else None,
    }
    # The text is language-neutral (stage names and the user's own words); the UI renders the
    # loss reason and the next interaction from the payload in the reader's language.
    lines = [f"{old.name} → {stage.name}"] + ([result_text] if result_text else [])
    await add_entry(session, kind="stage_change", text="\n".join(lines), author_id=actor.id,
                    deal_id=deal.id, payload=payload, occurred_at=now)
    loaded = await load_deal(session, deal.id)
    assert loaded is not None
    result = await deal_dict(session, loaded)
    history.record(session, actor, "deal", deal.id, before, history.deal_values(result))
    events.emit(session, "deal.updated", {"deal": result}, scope=deal_scope(loaded))
    return result
