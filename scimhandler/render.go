package scimhandler

import (
	"errors"
	"sort"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// renderOpts says which costly attributes a rendered document holds.
type renderOpts struct {
	groups        bool // User.groups: one read per group the user is in
	members       bool // Group.members: one read of the member list
	memberDisplay bool // members[].display: one read per member
	// names, when set, keeps the display names read so far in this
	// request: a list of groups often names the same members.
	names map[string]string
	// groupsOf, when set, holds the groups of the users being rendered,
	// read for a whole page at once (storage.ReadTx.GroupsOfEach); a user
	// absent from it is in no group.
	groupsOf map[string][]*storage.Group
}

// outputOpts is what a response under p needs.
func outputOpts(p *projection) renderOpts {
	return renderOpts{
		groups:        p.wantsTop("groups"),
		members:       p.wantsTop("members"),
		memberDisplay: p.wantsSub("members", "display"),
	}
}

// filterOpts is what evaluating f needs.
func filterOpts(f *compiledFilter) renderOpts {
	if f == nil {
		return renderOpts{}
	}
	return renderOpts{
		groups:        f.refs["groups"] || f.refs["groups.display"],
		members:       f.refs["members"],
		memberDisplay: f.refs["members.display"],
	}
}

func (o renderOpts) or(p renderOpts) renderOpts {
	names := o.names
	if names == nil {
		names = p.names
	}
	return renderOpts{groups: o.groups || p.groups, members: o.members || p.members,
		memberDisplay: o.memberDisplay || p.memberDisplay, names: names}
}

const timeFormat = time.RFC3339Nano

// userAttributes is the client-owned part of a user's SCIM document: what
// was stored, with the typed fields (which other parts of the gateway may
// set, e.g. for just-in-time users) taking precedence.
func userAttributes(u *storage.User) (map[string]any, error) {
	doc, err := decodeStored(u.Attributes)
	if err != nil {
		// Attributes another part of the gateway wrote in another shape
		// must not make the user (or every list holding it) unreadable:
		// the typed fields below still describe the user.
		doc = map[string]any{}
	}
	return userAttributesOf(doc, u), nil
}

// userAttributesOf is userAttributes given the stored attributes already
// decoded (doc, which it changes and returns).
func userAttributesOf(doc map[string]any, u *storage.User) map[string]any {
	for _, k := range []string{"id", "meta", "groups", "password", "schemas"} {
		deleteField(doc, k)
	}
	doc["userName"] = u.UserName
	doc["active"] = u.Active
	setOrDelete(doc, "externalId", nonEmpty(u.ExternalID))
	setOrDelete(doc, "displayName", nonEmpty(u.DisplayName))
	if _, _, ok := getField(doc, "emails"); !ok && len(u.Emails) > 0 {
		var emails []any
		for i, e := range u.Emails {
			emails = append(emails, map[string]any{"value": e, "primary": i == 0})
		}
		doc["emails"] = emails
	}
	return doc
}

// groupAttributes is the client-owned part of a group's document, members
// excluded (they live in membership records).
func groupAttributes(g *storage.Group) (map[string]any, error) {
	doc, err := decodeStored(g.Attributes)
	if err != nil {
		doc = map[string]any{} // as for users: the typed fields suffice
	}
	for _, k := range []string{"id", "meta", "members", "schemas"} {
		deleteField(doc, k)
	}
	doc["displayName"] = g.DisplayName
	setOrDelete(doc, "externalId", nonEmpty(g.ExternalID))
	return doc, nil
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// schemasOf lists the schemas a document uses: the core schema, then the
// extensions it has attributes of.
func schemasOf(rt *resourceType, doc map[string]any) []any {
	out := []any{rt.Schema.ID}
	for _, ext := range rt.Extensions {
		if _, v, ok := getField(doc, ext.ID); ok && v != nil {
			out = append(out, ext.ID)
		}
	}
	var unknown []string
	for k, v := range doc {
		if _, isMap := v.(map[string]any); isMap && isURNKey(k) && rt.extension(k) == nil {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		out = append(out, k)
	}
	return out
}

func metaOf(rt *resourceType, id string, created, modified time.Time, version int64, base string) map[string]any {
	if modified.IsZero() {
		modified = created
	}
	return map[string]any{
		"resourceType": rt.Name,
		"created":      created.UTC().Format(timeFormat),
		"lastModified": modified.UTC().Format(timeFormat),
		"version":      etag(version),
		"location":     base + rt.Endpoint + "/" + id,
	}
}

// renderUser builds the SCIM representation of u.
func renderUser(tx storage.ReadTx, u *storage.User, base string, o renderOpts) (map[string]any, error) {
	doc, err := userAttributes(u)
	if err != nil {
		return nil, err
	}
	doc["id"] = u.ID
	doc["schemas"] = schemasOf(userResource, doc)
	doc["meta"] = metaOf(userResource, u.ID, u.Created, u.Modified, u.Version, base)
	if o.groups && o.groupsOf != nil {
		var groups []any
		for _, g := range o.groupsOf[u.ID] {
			groups = append(groups, map[string]any{
				"value":   g.ID,
				"display": g.DisplayName,
				"$ref":    base + groupResource.Endpoint + "/" + g.ID,
				"type":    "direct",
			})
		}
		if len(groups) > 0 {
			doc["groups"] = groups
		}
	} else if o.groups {
		ids, err := tx.GroupsOf(u.ID)
		if err != nil {
			return nil, err
		}
		// A page of users names the same few groups again and again:
		// their names are read once per request (o.names). Those not
		// known yet are read in one GetGroups (one round trip on a
		// shared store, where a GetGroup each was one per group).
		var unknown []string
		for _, gid := range ids {
			if _, known := o.names[groupNameKey(gid)]; !known {
				unknown = append(unknown, gid)
			}
		}
		var read map[string]*storage.Group
		if len(unknown) > 0 {
			if read, err = tx.GetGroups(unknown); err != nil {
				return nil, err
			}
		}
		var groups []any
		for _, gid := range ids {
			display, known := o.names[groupNameKey(gid)]
			if !known {
				g := read[gid]
				if g == nil {
					continue // deleted: not a group any more
				}
				display = g.DisplayName
				if o.names != nil {
					o.names[groupNameKey(gid)] = display
				}
			}
			groups = append(groups, map[string]any{
				"value":   gid,
				"display": display,
				"$ref":    base + groupResource.Endpoint + "/" + gid,
				"type":    "direct",
			})
		}
		if len(groups) > 0 {
			doc["groups"] = groups
		}
	}
	return doc, nil
}

// renderUserDoc is renderUser without groups for a user whose stored
// attributes are the JSON encoding of doc (which it changes): the same
// document, without decoding the attributes again.
func renderUserDoc(doc map[string]any, u *storage.User, base string) map[string]any {
	doc = userAttributesOf(doc, u)
	doc["id"] = u.ID
	doc["schemas"] = schemasOf(userResource, doc)
	doc["meta"] = metaOf(userResource, u.ID, u.Created, u.Modified, u.Version, base)
	return doc
}

// groupNameKey is where renderUser keeps a group's displayName in
// renderOpts.names, apart from members' display names (which are a user's
// displayName for a user id).
func groupNameKey(groupID string) string { return "group:" + groupID }

// renderGroup builds the SCIM representation of g.
func renderGroup(tx storage.ReadTx, g *storage.Group, base string, o renderOpts) (map[string]any, error) {
	doc, err := groupAttributes(g)
	if err != nil {
		return nil, err
	}
	doc["id"] = g.ID
	doc["schemas"] = schemasOf(groupResource, doc)
	doc["meta"] = metaOf(groupResource, g.ID, g.Created, g.Modified, g.Version, base)
	if o.members {
		members := []any{}
		err := tx.Members(g.ID, func(m storage.Member) (bool, error) {
			e, err := renderMember(tx, m, base, o.memberDisplay, o.names)
			if err != nil {
				return false, err
			}
			members = append(members, e)
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		doc["members"] = members
	}
	return doc, nil
}

// renderMember is one element of Group.members.
func renderMember(tx storage.ReadTx, m storage.Member, base string, withDisplay bool, names map[string]string) (map[string]any, error) {
	typ := m.Type
	if typ == "" {
		typ = storage.MemberUser
	}
	endpoint := userResource.Endpoint
	if typ == storage.MemberGroup {
		endpoint = groupResource.Endpoint
	}
	e := map[string]any{"value": m.ID, "type": typ, "$ref": base + endpoint + "/" + m.ID}
	if withDisplay {
		display, known := names[m.ID]
		if !known {
			var err error
			if display, err = memberDisplay(tx, m); err != nil {
				return nil, err
			}
			if names != nil {
				names[m.ID] = display
			}
		}
		if display != "" {
			e["display"] = display
		}
	}
	return e, nil
}

// memberDisplay is a member's display name: a user's displayName (or
// userName), a group's displayName.
func memberDisplay(tx storage.ReadTx, m storage.Member) (string, error) {
	if m.Type == storage.MemberGroup {
		g, err := tx.GetGroup(m.ID)
		if errors.Is(err, storage.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return g.DisplayName, nil
	}
	u, err := tx.GetUser(m.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if u.DisplayName != "" {
		return u.DisplayName, nil
	}
	return u.UserName, nil
}
