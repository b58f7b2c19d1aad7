package operator

import (
	"context"
	"fmt"

	"github.com/portcullis/portcullis/authz"
	"github.com/portcullis/portcullis/scimhandler"
	"github.com/portcullis/portcullis/storage"
)

// Disconnect disconnects the tenant's IdP: it stops the directory pull
// (Config.StopPull), disables SCIM (the token is deleted and retired, so
// pushes get 401 saying it was disabled), and converts every IdP-managed
// user to a manual one with the role they have at that moment pinned.
// Nothing else about them changes (groups, status, sessions: nobody is
// signed out). Users are converted in batches, each with its
// user.converted event; one idp.disconnected event records the whole.
// Running it again converts whatever the first run did not reach.
//
// Reconnecting (a new token) and pushing a user that exists as manual
// adopts the manual record (scimhandler: same id, source back to scim, the
// pin dropped, a user.adopted event with the role before and after).
func (s *Service) Disconnect(ctx context.Context, actor string) (int, error) {
	if s.stopPull != nil {
		if err := s.stopPull(ctx); err != nil {
			return 0, fmt.Errorf("operator: stopping the directory pull: %w", err)
		}
	}
	if err := scimhandler.DisableToken(ctx, s.store, s.tenant, actor); err != nil {
		return 0, fmt.Errorf("operator: disabling SCIM: %w", err)
	}
	converted := 0
	after := ""
	for {
		var n int
		var last string
		var written []*storage.User
		err := s.update(ctx, func(tx storage.Tx) error {
			n, last, written = 0, "", written[:0]
			// A table per batch: its snapshot sees the batches before.
			t, err := authz.BuildRoleTable(tx, s.roles)
			if err != nil {
				return err
			}
			var batch []*storage.User
			scanned := 0
			err = tx.ScanUsers(after, func(u *storage.User) (bool, error) {
				scanned++
				last = u.ID
				if storage.IdPManaged(u.Source) {
					batch = append(batch, u)
				}
				return len(batch) < batchUsers && scanned < 20*batchUsers, nil
			})
			if err != nil {
				return err
			}
			if len(batch) < batchUsers && scanned < 20*batchUsers {
				last = "" // the scan reached the end
			}
			now := s.now().UTC()
			for _, u := range batch {
				rr, err := t.ResolveUser(tx, u)
				if err != nil {
					return err
				}
				next := *u
				next.Source, next.Role, next.Modified = storage.SourceManual, rr.Role, now
				if err := tx.PutUser(&next); err != nil {
					return err
				}
				written = append(written, &next)
				err = tx.AppendEvent(storage.Event{Type: storage.EventUserConverted, Actor: actor, ResourceType: "User",
					ResourceID: u.ID,
					Before:     fmt.Sprintf("%s source=%s role=%s (from %s)", u.UserName, u.Source, rr.Role, rr.From),
					After:      fmt.Sprintf("%s source=manual role=%s (pinned)", u.UserName, rr.Role),
					Reason:     "the IdP was disconnected"})
				if err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return converted, err
		}
		converted += n
		for _, u := range written {
			s.NoteUser(u) // listed as manual at once
		}
		if last == "" {
			break
		}
		after = last
	}
	pull := ""
	if s.stopPull != nil {
		pull = ", directory pull stopped"
	}
	err := s.update(ctx, func(tx storage.Tx) error {
		return tx.AppendEvent(storage.Event{Type: storage.EventIdPDisconnected, Actor: actor, ResourceType: "Tenant",
			ResourceID: s.tenant, After: fmt.Sprintf("converted=%d", converted),
			Reason: fmt.Sprintf("SCIM disabled (token deleted)%s; %d IdP-managed users converted to manual with their role pinned; no session ended", pull, converted)})
	})
	return converted, err
}
