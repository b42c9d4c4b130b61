"""Deals (сделки): ``records`` (the shape, loading and checking; create, read, change, delete),
``lists`` (the deal list, the kanban columns and their totals) and ``moves`` (a stage move with its
result, loss reason and next interaction). The package's names are the service functions the web
layer, the CLI and the other core modules call."""

from hub.crm.deals.lists import (
    deal_filters,
    encode_stage_cursor,
    list_deals,
    list_stage_deals,
    stage_totals,
)
from hub.crm.deals.moves import move_deal
from hub.crm.deals.records import (
    CLOSED,
    UTM,
    create_deal,
    deal_dict,
    deal_dicts,
    deal_query,
    delete_deal,
    get_deal,
    is_open,
    is_overdue,
    load_deal,
    roubles,
    update_deal,
)

__all__ = [
    "CLOSED", "UTM", "create_deal", "deal_dict", "deal_dicts", "deal_filters", "deal_query", "delete_deal",
    "encode_stage_cursor", "get_deal", "is_open", "is_overdue", "list_deals", "list_stage_deals", "load_deal",
    "move_deal", "roubles", "stage_totals", "update_deal",
]
