package scimhandler

import (
	"errors"
	"fmt"

	"github.com/portcullis/portcullis/storage"
)

// Reconnecting an IdP after a disconnect: the users it managed were
// converted to manual ones (operator.Service.Disconnect), and the IdP,
// given a new token, pushes them again. The rule: a SCIM POST whose
// userName is held by a manual user adopts that user instead of failing
// with a uniqueness error or making a duplicate. The record keeps its id,
// creation time, memberships and sessions; it takes the pushed attributes,
// its source goes back to scim and its hand-pinned role is dropped, so its
// role follows its groups again. The change is audited as user.adopted
// with the role before and after (Config.RoleOf), never silently.

// manualUserNamed returns the manual user holding userName, or nil.
func manualUserNamed(tx storage.ReadTx, userName string) (*storage.User, error) {
	u, err := tx.UserByUserName(userName)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if u.Source != storage.SourceManual {
		return nil, nil
	}
	return u, nil
}

// adoptManualUser writes pushed over the manual user old and records it.
func (h *Handler) adoptManualUser(tx storage.Tx, actor string, old, pushed *storage.User) (*storage.User, error) {
	roleBefore, err := h.roleText(tx, old)
	if err != nil {
		return nil, err
	}
	next := *pushed
	next.ID, next.Created, next.Version = old.ID, old.Created, old.Version
	next.Source, next.Role = storage.SourceSCIM, ""
	if err := tx.PutUser(&next); err != nil {
		return nil, err
	}
	roleAfter, err := h.roleText(tx, &next)
	if err != nil {
		return nil, err
	}
	reason := "a SCIM push of the userName adopted the manual user (the IdP was connected again)"
	if old.Active && !next.Active {
		n, err := tx.DeleteSessionsOf(next.ID)
		if err != nil {
			return nil, err
		}
		reason += fmt.Sprintf("; pushed inactive: %d sessions ended", n)
	}
	if err := tx.AppendEvent(storage.Event{
		Type: storage.EventUserAdopted, Actor: actor, ResourceType: "User", ResourceID: next.ID,
		Before: fmt.Sprintf("%s source=manual role=%s", old.UserName, roleBefore),
		After:  fmt.Sprintf("%s source=scim role=%s", next.UserName, roleAfter),
		Reason: reason,
	}); err != nil {
		return nil, err
	}
	return tx.GetUser(next.ID)
}

// roleText is the user's role as of tx for the audit event, or a phrase
// when the handler was not given the role resolver.
func (h *Handler) roleText(tx storage.ReadTx, u *storage.User) (string, error) {
	if h.roleOf == nil {
		if u.Source == storage.SourceManual && u.Role != "" {
			return u.Role, nil
		}
		return "(from groups)", nil
	}
	r, err := h.roleOf(tx, u)
	if err != nil {
		return "", err
	}
	if r == "" {
		return "(none)", nil
	}
	return r, nil
}
