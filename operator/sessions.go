package operator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/portcullis/portcullis/storage"
)

// sessionHandle is the public handle of a session: derived from its
// at-rest hash, so it reveals neither the session id nor the hash.
func sessionHandle(idHash [32]byte) string {
	sum := sha256.Sum256(append([]byte("portcullis session handle\x00"), idHash[:]...))
	return hex.EncodeToString(sum[:12])
}

// Sessions lists the user's live sessions, newest first.
func (s *Service) Sessions(ctx context.Context, userID string) ([]Session, error) {
	var out []Session
	err := s.store.View(ctx, s.tenant, func(tx storage.ReadTx) error {
		out = []Session{}
		if _, err := getUser(tx, userID); err != nil {
			return err
		}
		sessions, err := tx.SessionsOf(userID)
		if err != nil {
			return err
		}
		now := s.now()
		for _, ss := range sessions {
			if ss.Expired(now, s.idle) {
				continue
			}
			out = append(out, Session{ID: sessionHandle(ss.IDHash), Created: ss.Created, LastSeen: ss.LastSeen,
				Expires: ss.ExpiresAt, Protocol: ss.Protocol, ClientAddr: ss.ClientAddr, UserAgent: ss.UserAgent})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
		return nil
	})
	return out, err
}

// EndSession ends one session of the user (by its handle); the browser is
// signed out on its next request.
func (s *Service) EndSession(ctx context.Context, actor, userID, sessionID string) error {
	return s.update(ctx, func(tx storage.Tx) error {
		u, err := getUser(tx, userID)
		if err != nil {
			return err
		}
		sessions, err := tx.SessionsOf(u.ID)
		if err != nil {
			return err
		}
		for _, ss := range sessions {
			if sessionHandle(ss.IDHash) != sessionID {
				continue
			}
			if err := tx.DeleteSession(ss.IDHash); err != nil {
				return err
			}
			return tx.AppendEvent(storage.Event{Type: storage.EventSessionEnded, Actor: actor, ResourceType: "User",
				ResourceID: u.ID, Before: u.UserName, Reason: fmt.Sprintf("session %s (%s, from %s) ended by an operator", sessionID, ss.Protocol, ss.ClientAddr)})
		}
		return fmt.Errorf("%w: no session %q of user %s", ErrNotFound, sessionID, userID)
	})
}

// EndUserSessions ends every session of the user and says how many.
func (s *Service) EndUserSessions(ctx context.Context, actor, userID string) (int, error) {
	var n int
	err := s.update(ctx, func(tx storage.Tx) error {
		u, err := getUser(tx, userID)
		if err != nil {
			return err
		}
		if n, err = tx.DeleteSessionsOf(u.ID); err != nil {
			return err
		}
		return tx.AppendEvent(storage.Event{Type: storage.EventSessionEnded, Actor: actor, ResourceType: "User",
			ResourceID: u.ID, Before: u.UserName, Reason: fmt.Sprintf("all sessions of the user ended by an operator: %d", n)})
	})
	return n, err
}

// batchUsers is how many users one transaction of a tenant-wide operation
// handles, so it stays within the store's transaction size.
const batchUsers = 200

// EndTenantSessions ends every session of the tenant, in batches of users,
// and says how many; one session.ended event records the total.
func (s *Service) EndTenantSessions(ctx context.Context, actor string) (int, error) {
	total := 0
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var n int
		var last string
		err := s.update(ctx, func(tx storage.Tx) error {
			n, last = 0, ""
			var ids []string
			err := tx.ScanUsers(after, func(u *storage.User) (bool, error) {
				ids = append(ids, u.ID)
				return len(ids) < batchUsers, nil
			})
			if err != nil {
				return err
			}
			for _, id := range ids {
				k, err := tx.DeleteSessionsOf(id)
				if err != nil {
					return err
				}
				n += k
			}
			if len(ids) == batchUsers {
				last = ids[len(ids)-1]
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if last == "" {
			break
		}
		after = last
	}
	err := s.update(ctx, func(tx storage.Tx) error {
		return tx.AppendEvent(storage.Event{Type: storage.EventSessionEnded, Actor: actor, ResourceType: "Tenant",
			ResourceID: s.tenant, Reason: fmt.Sprintf("every session of the tenant ended by an operator: %d", total)})
	})
	return total, err
}
