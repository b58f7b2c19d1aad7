package scimhandler

import (
	"context"
	"errors"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// IssueToken creates the tenant's SCIM bearer token, or rotates it: the
// previous token stops working the moment this returns. The plaintext is
// returned once; only its SHA-256 is stored. The audit event
// (token.created or token.rotated, actor as given) is written in the same
// transaction.
//
// A ctx already done when IssueToken is called issues nothing: the
// plaintext would reach no one, and a rotation would leave the tenant
// without a usable token. Once started, the rotation and its event are
// not cancelled by ctx (see writeContext).
func IssueToken(ctx context.Context, store storage.Store, tenant, actor string) (plaintext string, err error) {
	if actor == "" {
		actor = "system"
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	ctx, cancel := writeContext(ctx)
	defer cancel()
	err = store.Update(ctx, tenant, func(tx storage.Tx) error {
		old, err := tx.GetSCIMToken()
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		secret, hash := storage.NewSecret()
		rec := &storage.SCIMToken{ID: storage.NewID(), Hash: hash, Created: time.Now().UTC()}
		if err := tx.PutSCIMToken(rec); err != nil {
			return err
		}
		ev := storage.Event{
			Type:         storage.EventTokenCreated,
			Actor:        actor,
			ResourceType: "SCIMToken",
			ResourceID:   rec.ID,
			After:        "token=" + rec.ID,
		}
		if old != nil {
			// Remembered so that a client still sending it is told it
			// was rotated, not counted as a guesser.
			if err := retireToken(tx, old, retiredRotated, rec.Created); err != nil {
				return err
			}
			ev.Type = storage.EventTokenRotated
			ev.Before = "token=" + old.ID
			ev.Reason = "the previous token stopped working"
		}
		if err := tx.AppendEvent(ev); err != nil {
			return err
		}
		// fn may run again on a conflict: only the committed run's
		// secret is returned.
		plaintext = secret
		return nil
	})
	if err != nil {
		return "", err
	}
	return plaintext, nil
}

// DisableToken deletes the tenant's SCIM token: every SCIM request gets 401
// until IssueToken makes a new one. Disabling when no token exists succeeds
// and records nothing. A caller hanging up (ctx done) does not stop it:
// disabling is the switch an operator pulls when the token leaked, and it
// completes with its token.disabled event (see writeContext).
func DisableToken(ctx context.Context, store storage.Store, tenant, actor string) error {
	if actor == "" {
		actor = "system"
	}
	ctx, cancel := writeContext(ctx)
	defer cancel()
	return store.Update(ctx, tenant, func(tx storage.Tx) error {
		old, err := tx.GetSCIMToken()
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := tx.DeleteSCIMToken(); err != nil {
			return err
		}
		if err := retireToken(tx, old, retiredDisabled, time.Now()); err != nil {
			return err
		}
		return tx.AppendEvent(storage.Event{
			Type:         storage.EventTokenDisabled,
			Actor:        actor,
			ResourceType: "SCIMToken",
			ResourceID:   old.ID,
			Before:       "token=" + old.ID,
			Reason:       "SCIM disabled: every request gets 401 until a new token is issued",
		})
	})
}
