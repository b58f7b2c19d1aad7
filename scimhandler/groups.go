package scimhandler

import (
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/portcullis/portcullis/storage"
)

// groupInput is a group document received on POST or PUT.
type groupInput struct {
	doc         map[string]any // without members
	displayName string
	externalID  string
	members     []any // the members[] elements given
}

func (h *Handler) readGroupInput(req *request) (*groupInput, error) {
	body, err := h.readBody(req)
	if err != nil {
		return nil, err
	}
	// Members are taken before normalising, which would drop their
	// read-only "display".
	var members []any
	if key, v, ok := getField(body, "members"); ok {
		members = asList(v)
		delete(body, key)
	}
	if len(members) > maxMemberChanges {
		return nil, errBadRequest(scimTypeTooMany, "at most %d members are accepted per request", maxMemberChanges)
	}
	doc, err := normalizeResource(groupResource, body)
	if err != nil {
		return nil, err
	}
	in := &groupInput{doc: doc, members: members}
	if in.displayName, in.externalID, err = groupFields(doc); err != nil {
		return nil, err
	}
	return in, nil
}

// groupFields reads the typed fields of a normalised group document.
func groupFields(doc map[string]any) (displayName, externalID string, err error) {
	displayName, _ = doc["displayName"].(string)
	if strings.TrimSpace(displayName) == "" {
		return "", "", errInvalidValue("displayName is required and must not be empty")
	}
	externalID, _ = doc["externalId"].(string)
	if len(displayName) > maxIndexedLength || len(externalID) > maxIndexedLength {
		return "", "", errInvalidValue("displayName and externalId must be at most %d bytes", maxIndexedLength)
	}
	return displayName, externalID, nil
}

func (h *Handler) getGroup(req *request, id string) error {
	return storedGroups.serveGet(h, req, id)
}

func (h *Handler) createGroup(req *request) error {
	p, err := projectionFor(groupResource, req.r)
	if err != nil {
		return err
	}
	in, err := h.readGroupInput(req)
	if err != nil {
		return err
	}
	attrs, err := marshalDoc(in.doc)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	g := &storage.Group{ID: storage.NewID(), DisplayName: in.displayName, ExternalID: in.externalID,
		Source: storage.SourceSCIM, Attributes: attrs, Created: now, Modified: now}
	var doc map[string]any
	var version int64
	err = h.update(req.ctx, func(tx storage.Tx) error {
		rec := *g
		if err := tx.PutGroup(&rec); err != nil {
			return err
		}
		edit := newMemberEdit(tx, g.ID)
		if err := edit.addAll(in.members); err != nil {
			return err
		}
		added, _, err := edit.commit()
		if err != nil {
			return err
		}
		if err := tx.AppendEvent(storage.Event{Type: storage.EventGroupCreated, Actor: req.actor,
			ResourceType: "Group", ResourceID: g.ID, After: groupSummary(g, len(added))}); err != nil {
			return err
		}
		if err := recordMemberChanges(tx, req.actor, g.ID, added, nil); err != nil {
			return err
		}
		stored, err := tx.GetGroup(g.ID)
		if err != nil {
			return err
		}
		version = stored.Version
		doc, err = renderGroup(tx, stored, req.base, outputOpts(p))
		return err
	})
	if err != nil {
		return err
	}
	h.logger.Info("scim group created", zap.String("id", g.ID))
	return writeResource(req, http.StatusCreated, groupResource, doc, version, p)
}

func (h *Handler) replaceGroup(req *request, id string) error {
	p, err := projectionFor(groupResource, req.r)
	if err != nil {
		return err
	}
	in, err := h.readGroupInput(req)
	if err != nil {
		return err
	}
	return storedGroups.change(h, req, id, p, true, func(tx storage.Tx, g *storage.Group) (*storage.Group, error) {
		edit := newMemberEdit(tx, id)
		if err := edit.clear(); err != nil {
			return nil, err
		}
		if err := edit.addAll(in.members); err != nil {
			return nil, err
		}
		next := *g
		next.DisplayName, next.ExternalID = in.displayName, in.externalID
		var err error
		if next.Attributes, err = marshalDoc(in.doc); err != nil {
			return nil, err
		}
		return saveGroup(tx, req.actor, g, &next, edit)
	})
}

// saveGroup applies the membership edits and writes next over before, with
// the audit events. The group record is rewritten (bumping its version)
// when anything changed, but never the member list as a whole.
func saveGroup(tx storage.Tx, actor string, before, next *storage.Group, edit *memberEdit) (*storage.Group, error) {
	added, removed, err := edit.commit()
	if err != nil {
		return nil, err
	}
	docChanged := before.DisplayName != next.DisplayName || before.ExternalID != next.ExternalID ||
		len(changedAttributes(before.Attributes, next.Attributes, nil)) > 0
	if !docChanged && len(added) == 0 && len(removed) == 0 {
		return before, nil
	}
	next.Modified = time.Now().UTC()
	if err := tx.PutGroup(next); err != nil {
		return nil, err
	}
	if docChanged {
		b, a := groupDiff(before, next)
		if err := tx.AppendEvent(storage.Event{Type: storage.EventGroupUpdated, Actor: actor,
			ResourceType: "Group", ResourceID: next.ID, Before: b, After: a}); err != nil {
			return nil, err
		}
	}
	if err := recordMemberChanges(tx, actor, next.ID, added, removed); err != nil {
		return nil, err
	}
	return tx.GetGroup(next.ID)
}

func (h *Handler) patchGroup(req *request, id string) error {
	q := req.r.URL.Query()
	// A PATCH answer with the whole group would list every member: it is
	// 204 unless the client asks for attributes (RFC 7644 §3.5.2 allows
	// both; Entra ID advises 204).
	wantBody := q.Has("attributes") || q.Has("excludedAttributes")
	p, err := projectionFor(groupResource, req.r)
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
	return storedGroups.change(h, req, id, p, wantBody, func(tx storage.Tx, g *storage.Group) (*storage.Group, error) {
		d, err := groupAttributes(g)
		if err != nil {
			return nil, err
		}
		edit := newMemberEdit(tx, id)
		if err := applyGroupOps(d, edit, ops, req.base); err != nil {
			return nil, err
		}
		if d, err = normalizeResource(groupResource, d); err != nil {
			return nil, err
		}
		next := *g
		if next.DisplayName, next.ExternalID, err = groupFields(d); err != nil {
			return nil, err
		}
		if next.Attributes, err = marshalDoc(d); err != nil {
			return nil, err
		}
		return saveGroup(tx, req.actor, g, &next, edit)
	})
}

// applyGroupOps applies PATCH operations to a group: those on members go
// to the membership edit, the rest to the group's document.
func applyGroupOps(doc map[string]any, edit *memberEdit, ops []patchOp, base string) error {
	for _, op := range ops {
		if op.path == "" {
			m, ok := op.value.(map[string]any)
			if ok && op.op != opRemove {
				if key, mv, has := getField(m, "members"); has {
					t := patchTarget{ref: attrRef{name: "members", def: groupResource.topAttr("members")}}
					if err := edit.applyMemberOp(patchOp{op: op.op, value: mv, hasValue: true}, t, base); err != nil {
						return err
					}
					rest := make(map[string]any, len(m))
					for k, v := range m {
						if k != key {
							rest[k] = v
						}
					}
					if len(rest) == 0 {
						continue
					}
					op.value = rest
				}
			}
			if err := applyPatchOp(groupResource, doc, op); err != nil {
				return err
			}
			continue
		}
		t, err := resolvePatchPath(groupResource, op.path)
		if err != nil {
			return err
		}
		if t.ref.isTop("members") {
			if err := edit.applyMemberOp(op, t, base); err != nil {
				return err
			}
			continue
		}
		if err := applyPatchOp(groupResource, doc, op); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) deleteGroup(req *request, id string) error {
	return storedGroups.remove(h, req, id, func(tx storage.Tx, g *storage.Group) error {
		n, err := tx.CountMembers(id)
		if err != nil {
			return err
		}
		// Groups this group was a member of lose a member.
		parents, err := tx.GroupsOf(id)
		if err != nil {
			return err
		}
		if err := tx.DeleteGroup(id); err != nil {
			return err
		}
		if err := tx.AppendEvent(storage.Event{Type: storage.EventGroupDeleted, Actor: req.actor,
			ResourceType: "Group", ResourceID: id, ResourceName: g.DisplayName, Before: groupSummary(g, n)}); err != nil {
			return err
		}
		return touchGroupsAfterMemberLoss(tx, req.actor, parents, storage.Member{ID: id, Type: storage.MemberGroup})
	})
}
