package sso

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/internal/clientaddr"
	"github.com/portcullis/portcullis/storage"
)

// auditTimeout bounds an audit write that no client can cancel.
const auditTimeout = 10 * time.Second

// auditContext is the context of a store write that records what happened
// to a request (a sign-in, its refusal, a sign-out): a client hanging up
// must not cancel it, or an attacker could keep their actions out of the
// audit log by dropping the connection at the right moment.
func auditContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
}

// clientKey is the address r's refusals are counted under.
func (s *Service) clientKey(r *http.Request) string {
	addr := ""
	if s.cfg.ClientIP != nil {
		addr = s.cfg.ClientIP(r)
	}
	if addr == "" {
		addr = r.RemoteAddr
	}
	return clientaddr.Key(addr)
}

// auditRefusal counts a refused sign-in in the limiter and, at most once
// per address (and known user) and window, records a signin.refused event
// standing for every refusal since the last one. Failing to write it is
// logged: the person is refused either way. eventID is the record's id
// when this refusal was recorded.
func (s *Service) auditRefusal(r *http.Request, protocol string, ref *refusal) (v refusalVerdict, eventID string) {
	now := s.now()
	client := s.clientKey(r)
	v = s.refusals.refused(client, ref.userID, protocol, ref.reason, now)
	s.log.Debug("sign-in refused", zap.String("protocol", protocol), zap.String("reason", ref.reason),
		zap.String("user", ref.userID), zap.String("client", client), zap.Bool("limited", v.limited))
	if !v.record {
		return v, ""
	}
	s.log.Info("sign-in refused", zap.String("protocol", protocol), zap.String("reason", ref.reason),
		zap.String("user", ref.userID), zap.String("client", client), zap.Int("count", v.count))
	e := refusalEvent(now, protocol, ref.userID, ref.reason, client, v.count, v.since)
	ctx, cancel := auditContext(r)
	defer cancel()
	eventID, err := s.appendAudit(ctx, e)
	if err != nil {
		s.log.Error("cannot record refused sign-in", zap.Error(err))
	}
	return v, eventID
}

// refusalEvent is the signin.refused event standing for count refusals
// from client since since, the last for reason.
func refusalEvent(now time.Time, protocol, userID, reason, client string, count int, since time.Time) storage.Event {
	e := storage.Event{
		Time: now, Type: storage.EventSignInRefused, Actor: "anonymous", After: protocol,
		Reason: truncate(reason, 400) + " (" + strconv.Itoa(count) + " refusal" + plural(count) + " from " + client +
			" since " + since.UTC().Format(time.RFC3339) + ")",
	}
	if userID != "" {
		e.Actor, e.ResourceType, e.ResourceID = userID, "User", userID
	}
	return e
}

// overBudgetEvent stands for the refusals that got no record of their own
// because the tenant's record budget was spent (many addresses at once).
func overBudgetEvent(now time.Time, count int, since time.Time) storage.Event {
	return storage.Event{
		Time: now, Type: storage.EventSignInRefused, Actor: "anonymous",
		Reason: strconv.Itoa(count) + " refusal" + plural(count) + " since " + since.UTC().Format(time.RFC3339) +
			" not recorded one by one: more addresses than the " + strconv.Itoa(refusalRecordBudget) + " records a minute the tenant writes",
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// appendAudit writes one audit event in a transaction of its own and
// returns its id.
func (s *Service) appendAudit(ctx context.Context, e storage.Event) (eventID string, err error) {
	err = s.store.Update(ctx, s.cfg.Tenant, func(tx storage.Tx) error {
		// An audit event moves no Generation: the store decides that.
		eventID, err = tx.AppendEventID(e)
		return err
	})
	if err != nil {
		return "", err
	}
	return eventID, nil
}

// maxFlushedTallies bounds the events one flush writes (one transaction).
const maxFlushedTallies = 500

// flushRefusals records the refusals that went unrecorded because their
// address (or user) was already recorded in the window and has been quiet
// since. It sleeps until the limiter signals such a refusal, then flushes
// once a window until none is left: a tenant that refuses nobody (the
// usual case) wakes no goroutine, and a gateway of many tenants keeps no
// timer per tenant.
func (s *Service) flushRefusals(ctx context.Context) {
	defer s.wg.Done()
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.refusals.unrecorded:
		}
		for left := true; left; left = s.refusals.hasUnrecorded() {
			// A refusal left unrecorded now is due at most a window
			// from now (its key was recorded within the last window).
			if t == nil {
				t = time.NewTimer(refusalWindow)
			} else {
				t.Reset(refusalWindow)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			s.flushDueRefusals(ctx)
		}
	}
}

// flushDueRefusals writes the events of the tallies due now and of the
// refusals over the tenant's budget, in one transaction.
func (s *Service) flushDueRefusals(ctx context.Context) {
	now := s.now()
	due := s.refusals.dueTallies(now, maxFlushedTallies)
	over, since := s.refusals.takeOverBudget()
	if len(due) == 0 && over == 0 {
		return
	}
	err := s.store.Update(ctx, s.cfg.Tenant, func(tx storage.Tx) error {
		for _, d := range due {
			if err := tx.AppendEvent(refusalEvent(now, d.protocol, d.userID, d.lastReason, d.client, d.pending, d.pendingSince)); err != nil {
				return err
			}
		}
		if over > 0 {
			return tx.AppendEvent(overBudgetEvent(now, over, since))
		}
		return nil
	})
	if err != nil {
		s.log.Error("cannot record refused sign-ins", zap.Error(err), zap.Int("tallies", len(due)))
	}
}
