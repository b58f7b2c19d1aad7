package scimhandler

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// Bounds on values the store indexes: index keys hold them.
const (
	maxIndexedLength = 1024
	maxEmails        = 100
)

// userFields are the typed storage.User fields a SCIM document determines.
type userFields struct {
	userName    string
	externalID  string
	displayName string
	emails      []string
	active      *bool // nil: the document does not say
}

// deriveUserFields reads the typed fields of a normalised user document.
func deriveUserFields(doc map[string]any) (userFields, error) {
	var f userFields
	f.userName, _ = doc["userName"].(string)
	if strings.TrimSpace(f.userName) == "" {
		return f, errInvalidValue("userName is required and must not be empty")
	}
	f.externalID, _ = doc["externalId"].(string)
	f.displayName, _ = doc["displayName"].(string)
	for name, v := range map[string]string{"userName": f.userName, "externalId": f.externalID} {
		if len(v) > maxIndexedLength {
			return f, errInvalidValue("%s is longer than %d bytes", name, maxIndexedLength)
		}
	}
	if a, ok := doc["active"].(bool); ok {
		f.active = &a
	}
	emails := asList(doc["emails"])
	if len(emails) > maxEmails {
		return f, errInvalidValue("at most %d emails are accepted", maxEmails)
	}
	var primary, others []string
	for _, e := range emails {
		m, _ := e.(map[string]any)
		v, _ := m["value"].(string)
		if v == "" {
			continue
		}
		if len(v) > maxIndexedLength {
			return f, errInvalidValue("an email value is longer than %d bytes", maxIndexedLength)
		}
		if isPrimary(m) {
			primary = append(primary, v)
		} else {
			others = append(others, v)
		}
	}
	f.emails = append(primary, others...)
	return f, nil
}

// takePassword removes the password from a normalised document and
// discards it. The gateway never checks a SCIM password (users sign in at
// their IdP) and RFC 7643 never returns one, so keeping even a hash of it
// would be a secret held for nothing; IdPs such as Okta and Entra send one
// on create regardless, so it is accepted. A password that is not a string
// is refused like any other mistyped attribute.
func takePassword(doc map[string]any) error {
	_, v, ok := getField(doc, "password")
	if !ok {
		return nil
	}
	deleteField(doc, "password")
	if _, isString := v.(string); !isString && v != nil {
		return errInvalidValue("password must be a string")
	}
	return nil
}

// userInput is a user document received on POST or PUT, checked, without
// its password.
type userInput struct {
	doc    map[string]any
	fields userFields
}

func (h *Handler) readUserInput(req *request) (*userInput, error) {
	body, err := h.readBody(req)
	if err != nil {
		return nil, err
	}
	doc, err := normalizeResource(userResource, body)
	if err != nil {
		return nil, err
	}
	in := &userInput{doc: doc}
	if err := takePassword(doc); err != nil {
		return nil, err
	}
	if in.fields, err = deriveUserFields(doc); err != nil {
		return nil, err
	}
	return in, nil
}

func (h *Handler) getUser(req *request, id string) error {
	return storedUsers.serveGet(h, req, id)
}

func (h *Handler) createUser(req *request) error {
	p, err := projectionFor(userResource, req.r)
	if err != nil {
		return err
	}
	in, err := h.readUserInput(req)
	if err != nil {
		return err
	}
	active := true
	if in.fields.active != nil {
		active = *in.fields.active
	}
	in.doc["active"] = active
	attrs, err := marshalDoc(in.doc)
	if err != nil {
		return err
	}
	// Microseconds: what every store keeps (PostgreSQL's timestamps), so
	// the created answer shows the times a later GET does.
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &storage.User{
		ID:          storage.NewID(),
		UserName:    in.fields.userName,
		ExternalID:  in.fields.externalID,
		DisplayName: in.fields.displayName,
		Emails:      in.fields.emails,
		Active:      active,
		Source:      storage.SourceSCIM,
		Attributes:  attrs,
		Created:     now,
		Modified:    now,
	}
	var stored *storage.User
	adopted := false
	err = h.update(req.ctx, func(tx storage.Tx) error {
		adopted = false
		// One read of the userName decides: a manual user of that name is
		// adopted, any other holder is a 409, and a free name is taken
		// (PutUser's own read of it guards against a concurrent creator).
		holder, err := tx.UserByUserName(u.UserName)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		case holder.Source == storage.SourceManual:
			adopted = true
			stored, err = h.adoptManualUser(tx, req.actor, holder, u)
			return err
		case holder.ID != u.ID:
			return errUserNameTaken(u.UserName)
		}
		rec := *u
		if err := tx.PutUser(&rec); err != nil {
			return err
		}
		if err := tx.AppendEvent(storage.Event{
			Type: storage.EventUserCreated, Actor: req.actor, ResourceType: "User",
			ResourceID: u.ID, ResourceName: u.UserName, After: userSummary(u),
		}); err != nil {
			return err
		}
		// PutUser set what the store decides (Version; Created and
		// Modified were given): rec is the user as stored, no read back.
		stored = &rec
		return nil
	})
	if err != nil {
		return err
	}
	if adopted {
		h.logger.Info("scim push adopted a manual user", zap.String("id", stored.ID))
	} else {
		h.logger.Info("scim user created", zap.String("id", stored.ID))
	}
	// The response is rendered from the document just decoded and stored,
	// not from the stored bytes decoded again; groups are not rendered on
	// create.
	doc := renderUserDoc(in.doc, stored, req.base)
	return writeResource(req, http.StatusCreated, userResource, doc, stored.Version, p)
}

// checkUserNameFree answers 409 uniqueness when another user holds
// userName (case-insensitively). The store enforces it too; this gives the
// clearer message.
func checkUserNameFree(tx storage.ReadTx, userName, id string) error {
	other, err := tx.UserByUserName(userName)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return err
	case other.ID != id:
		return errUserNameTaken(userName)
	}
	return nil
}

func errUserNameTaken(userName string) error {
	return &scimError{status: http.StatusConflict, scimType: scimTypeUniqueness,
		detail: fmt.Sprintf("userName %q is already taken", truncate(userName, 128))}
}

func (h *Handler) replaceUser(req *request, id string) error {
	p, err := projectionFor(userResource, req.r)
	if err != nil {
		return err
	}
	in, err := h.readUserInput(req)
	if err != nil {
		return err
	}
	var deactivated bool
	err = storedUsers.change(h, req, id, p, true, func(tx storage.Tx, u *storage.User) (*storage.User, error) {
		next := *u
		next.UserName, next.ExternalID = in.fields.userName, in.fields.externalID
		next.DisplayName, next.Emails = in.fields.displayName, in.fields.emails
		// PUT replaces the document, but a missing "active" keeps the
		// user's state: a deactivated user is never reactivated by a
		// client that merely left the attribute out.
		if in.fields.active != nil {
			next.Active = *in.fields.active
		}
		d := cloneDoc(in.doc)
		d["active"] = next.Active
		var err error
		if next.Attributes, err = marshalDoc(d); err != nil {
			return nil, err
		}
		deactivated = u.Active && !next.Active
		return h.saveUser(tx, req.actor, u, &next)
	})
	if err == nil && deactivated {
		h.observeDeprovisioned(req, id)
	}
	return err
}

// saveUser writes next over before with its audit event: user.updated,
// or user.deactivated / user.reactivated when active flipped. Deactivation
// ends every session of the user in the same transaction, so the gateway
// refuses the user's next request. An unchanged user is not written (a
// password, which is discarded, is no change).
func (h *Handler) saveUser(tx storage.Tx, actor string, before, next *storage.User) (*storage.User, error) {
	if before.Source == storage.SourceManual {
		// The IdP found the manual user (by a userName filter, or by the
		// id it knew before a disconnect) and writes it: it adopts it.
		next.PasswordHash, next.Modified = "", time.Now().UTC()
		if !strings.EqualFold(before.UserName, next.UserName) {
			if err := checkUserNameFree(tx, next.UserName, next.ID); err != nil {
				return nil, err
			}
		}
		return h.adoptManualUser(tx, actor, before, next)
	}
	if userUnchanged(before, next) {
		return before, nil
	}
	// No password is kept: a hash stored by an earlier version of the
	// gateway goes with the user's next write.
	next.PasswordHash = ""
	if !strings.EqualFold(before.UserName, next.UserName) {
		if err := checkUserNameFree(tx, next.UserName, next.ID); err != nil {
			return nil, err
		}
	}
	next.Modified = time.Now().UTC()
	if err := tx.PutUser(next); err != nil {
		return nil, err
	}
	b, a := userDiff(before, next)
	ev := storage.Event{Type: storage.EventUserUpdated, Actor: actor, ResourceType: "User",
		ResourceID: next.ID, Before: b, After: a}
	switch {
	case before.Active && !next.Active:
		n, err := tx.DeleteSessionsOf(next.ID)
		if err != nil {
			return nil, err
		}
		ev.Type = storage.EventUserDeactivated
		ev.Reason = fmt.Sprintf("%d sessions ended", n)
	case !before.Active && next.Active:
		ev.Type = storage.EventUserReactivated
	}
	if err := tx.AppendEvent(ev); err != nil {
		return nil, err
	}
	return tx.GetUser(next.ID)
}

func userUnchanged(a, b *storage.User) bool {
	return a.UserName == b.UserName && a.ExternalID == b.ExternalID && a.DisplayName == b.DisplayName &&
		a.Active == b.Active &&
		strings.Join(a.Emails, "\x00") == strings.Join(b.Emails, "\x00") &&
		len(changedAttributes(a.Attributes, b.Attributes, nil)) == 0
}

// dropPasswordOps removes the operations on "password" from ops, and the
// password from operations without a path, so the password is discarded
// before it reaches the document (see takePassword). A non-string password
// is refused.
func dropPasswordOps(ops []patchOp) ([]patchOp, error) {
	var rest []patchOp
	isPasswordPath := func(p string) bool {
		return strings.EqualFold(p, "password") || strings.EqualFold(p, schemaUser+":password")
	}
	for _, op := range ops {
		switch {
		case op.path != "" && isPasswordPath(op.path):
			if _, ok := op.value.(string); !ok && op.op != opRemove && op.value != nil {
				return nil, errInvalidValue("password must be a string")
			}
		case op.path == "" && op.op != opRemove:
			m, ok := op.value.(map[string]any)
			if !ok {
				rest = append(rest, op)
				continue
			}
			key, v, has := getField(m, "password")
			if !has {
				rest = append(rest, op)
				continue
			}
			if _, ok := v.(string); !ok && v != nil {
				return nil, errInvalidValue("password must be a string")
			}
			trimmed := make(map[string]any, len(m))
			for k, e := range m {
				if k != key {
					trimmed[k] = e
				}
			}
			if len(trimmed) > 0 {
				op.value = trimmed
				rest = append(rest, op)
			}
		default:
			rest = append(rest, op)
		}
	}
	return rest, nil
}

func (h *Handler) patchUser(req *request, id string) error {
	p, err := projectionFor(userResource, req.r)
	if err != nil {
		return err
	}
	body, err := h.readBody(req)
	if err != nil {
		return err
	}
	ops, err := parsePatchBody(body)
	if err != nil {
		return err
	}
	ops, err = dropPasswordOps(ops)
	if err != nil {
		return err
	}
	var deactivated bool
	err = storedUsers.change(h, req, id, p, true, func(tx storage.Tx, u *storage.User) (*storage.User, error) {
		d, err := userAttributes(u)
		if err != nil {
			return nil, err
		}
		if err := applyPatch(userResource, d, ops); err != nil {
			return nil, err
		}
		if d, err = normalizeResource(userResource, d); err != nil {
			return nil, err
		}
		if err := takePassword(d); err != nil {
			return nil, err
		}
		f, err := deriveUserFields(d)
		if err != nil {
			return nil, err
		}
		next := *u
		next.UserName, next.ExternalID, next.DisplayName, next.Emails = f.userName, f.externalID, f.displayName, f.emails
		if f.active != nil {
			next.Active = *f.active
		}
		d["active"] = next.Active
		if next.Attributes, err = marshalDoc(d); err != nil {
			return nil, err
		}
		deactivated = u.Active && !next.Active
		return h.saveUser(tx, req.actor, u, &next)
	})
	if err == nil && deactivated {
		h.observeDeprovisioned(req, id)
	}
	return err
}

func (h *Handler) deleteUser(req *request, id string) error {
	// Deleting an inactive user ends no access: its sessions ended when
	// it was deactivated.
	var wasActive bool
	err := storedUsers.remove(h, req, id, func(tx storage.Tx, u *storage.User) error {
		wasActive = u.Active
		groupIDs, err := tx.GroupsOf(id)
		if err != nil {
			return err
		}
		n, err := tx.DeleteSessionsOf(id)
		if err != nil {
			return err
		}
		if err := tx.DeleteUser(id); err != nil {
			return err
		}
		if err := tx.AppendEvent(storage.Event{
			Type: storage.EventUserDeleted, Actor: req.actor, ResourceType: "User", ResourceID: id, ResourceName: u.UserName,
			Before: userSummary(u), Reason: fmt.Sprintf("%d sessions ended", n),
		}); err != nil {
			return err
		}
		// The store dropped the user's memberships; the groups changed,
		// so their versions move on too.
		return touchGroupsAfterMemberLoss(tx, req.actor, groupIDs, storage.Member{ID: id, Type: storage.MemberUser})
	})
	if err == nil && wasActive {
		h.observeDeprovisioned(req, id)
	}
	return err
}

// touchGroupsAfterMemberLoss bumps the groups a deleted member was in and
// records the lost memberships.
func touchGroupsAfterMemberLoss(tx storage.Tx, actor string, groupIDs []string, m storage.Member) error {
	now := time.Now().UTC()
	for _, gid := range groupIDs {
		g, err := tx.GetGroup(gid)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		g.Modified = now
		if err := tx.PutGroup(g); err != nil {
			return err
		}
		if err := tx.AppendEvent(storage.Event{
			Type: storage.EventMemberRemoved, Actor: actor, ResourceType: "Group", ResourceID: gid,
			Before: memberSummary(m), Reason: "member deleted",
		}); err != nil {
			return err
		}
	}
	return nil
}
