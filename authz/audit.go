package authz

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Audit writes of the gate run under context.WithoutCancel: a client that
// hangs up must not take the record of its own refusal with it.

// auditDenied records a policy denial, at most once a minute per user and
// route: every audit write is a durable (fsync'd) store write, and a user
// retrying a page must not be able to cost one per request. It returns the
// id of the event that records the denial (the earlier one within the
// minute), "" when none could be written.
func (ids *Identities) auditDenied(ctx context.Context, id *Identity, route, reason string) (eventID string) {
	now := ids.now()
	key := id.UserID + "\x00" + route
	ok, _, lastID := ids.audits.allow(key, now)
	if !ok {
		return lastID
	}
	err := ids.store.Update(context.WithoutCancel(ctx), ids.tenant, func(tx storage.Tx) error {
		var err error
		eventID, err = tx.AppendEventID(storage.Event{
			Time:         now,
			Type:         storage.EventAccessDenied,
			Actor:        id.UserID,
			ActorName:    id.UserName,
			ResourceType: "Route",
			ResourceID:   route,
			Before:       id.Role,
			Reason:       reason,
		})
		return err
	})
	if err != nil {
		ids.logger.Error("recording an access denial", zap.String("tenant", ids.tenant), zap.Error(err))
		return ""
	}
	ids.audits.recorded(key, eventID)
	return eventID
}

// auditRefusedRequest records a request refused before anyone was
// identified (a path a backend could read differently, a tunnel), at most
// once a minute per client address and auditBudgetPerWindow times a minute
// per tenant; a record counts the refusals skipped since the previous one.
// It returns the id of the record standing for this refusal, as
// auditDenied does.
func (ids *Identities) auditRefusedRequest(ctx context.Context, addr, route, reason string) (eventID string) {
	now := ids.now()
	key := "client\x00" + addr
	ok, skipped, lastID := ids.audits.allow(key, now)
	if !ok {
		return lastID
	}
	ok, unbudgeted := ids.refusalBudget.take(now)
	if !ok {
		return ""
	}
	if skipped > 0 {
		reason += fmt.Sprintf(" (and %d more refused from this address since the previous record)", skipped)
	}
	if unbudgeted > 0 {
		reason += fmt.Sprintf(" (and %d refused requests from other addresses not recorded one by one: over the tenant's %d records a minute)", unbudgeted, auditBudgetPerWindow)
	}
	err := ids.store.Update(context.WithoutCancel(ctx), ids.tenant, func(tx storage.Tx) error {
		var err error
		eventID, err = tx.AppendEventID(storage.Event{
			Time:         now,
			Type:         storage.EventAccessDenied,
			Actor:        "anonymous@" + addr,
			ResourceType: "Route",
			ResourceID:   route,
			Reason:       reason,
		})
		return err
	})
	if err != nil {
		ids.logger.Error("recording a refused request", zap.String("tenant", ids.tenant), zap.Error(err))
		return ""
	}
	ids.audits.recorded(key, eventID)
	return eventID
}

// truncate cuts s to n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
