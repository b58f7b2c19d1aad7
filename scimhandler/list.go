package scimhandler

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// record is one user or group met while listing.
type record struct {
	id    string
	user  *storage.User
	group *storage.Group
	// doc, when set, is the record already rendered with the options the
	// response needs (candidates of an indexed filter are few, so they
	// are rendered once for both the filter and the answer).
	doc map[string]any
	// groupIDs are the user's groups when groupsRead: read with the
	// user (storage.ReadTx.UserPage) for a page that shows them.
	groupIDs   []string
	groupsRead bool
}

func (rec record) render(tx storage.ReadTx, base string, o renderOpts) (map[string]any, error) {
	if rec.user != nil {
		return renderUser(tx, rec.user, base, o)
	}
	return renderGroup(tx, rec.group, base, o)
}

// listParams are a query's parameters as the client gave them (RFC 7644
// §3.4.2), from the URL or a SearchRequest body.
type listParams struct {
	filter     string
	hasFilter  bool
	startIndex int
	count      int
	sortBy     string
	sortOrder  string
	attributes []string
	excluded   []string
}

// lenientInt reads an integer query parameter; anything unreadable counts
// as absent, as the RFC's "interpreted as" rules suggest leniency.
func lenientInt(s string, def int) int {
	const limit = 1 << 31
	s = strings.TrimSpace(s)
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f { // unreadable or NaN
		return def
	}
	f = min(max(f, -limit), limit)
	return int(f)
}

// fix applies the RFC's rules: startIndex below 1 is 1, a negative count
// is 0, and count is capped at maxResults.
func (p *listParams) fix(maxResults int) {
	if p.startIndex < 1 {
		p.startIndex = 1
	}
	if p.count < 0 {
		p.count = 0
	}
	if p.count > maxResults {
		p.count = maxResults
	}
}

func (h *Handler) paramsFromQuery(r *http.Request) listParams {
	q := r.URL.Query()
	p := listParams{
		startIndex: lenientInt(q.Get("startIndex"), 1),
		count:      lenientInt(q.Get("count"), h.maxResults),
		sortBy:     strings.TrimSpace(q.Get("sortBy")),
		sortOrder:  strings.TrimSpace(q.Get("sortOrder")),
		attributes: splitAttrList(q.Get("attributes")),
		excluded:   splitAttrList(q.Get("excludedAttributes")),
	}
	if q.Has("filter") {
		p.filter, p.hasFilter = strings.TrimSpace(q.Get("filter")), true
	}
	p.fix(h.maxResults)
	return p
}

// paramsFromSearch reads a SearchRequest body (RFC 7644 §3.4.3).
func (h *Handler) paramsFromSearch(body map[string]any) (listParams, error) {
	p := listParams{startIndex: 1, count: h.maxResults}
	str := func(name string) (string, error) {
		_, v, ok := getField(body, name)
		if !ok || v == nil {
			return "", nil
		}
		s, isStr := v.(string)
		if !isStr {
			return "", errInvalidValue("%s must be a string", name)
		}
		return strings.TrimSpace(s), nil
	}
	num := func(name string, def int) int {
		_, v, ok := getField(body, name)
		if !ok {
			return def
		}
		switch t := v.(type) {
		case json.Number:
			return lenientInt(t.String(), def)
		case string:
			return lenientInt(t, def)
		}
		return def
	}
	list := func(name string) ([]string, error) {
		_, v, ok := getField(body, name)
		if !ok || v == nil {
			return nil, nil
		}
		switch t := v.(type) {
		case string:
			return splitAttrList(t), nil
		case []any:
			var out []string
			for _, e := range t {
				s, ok := e.(string)
				if !ok {
					return nil, errInvalidValue("%s must be an array of attribute paths", name)
				}
				out = append(out, splitAttrList(s)...)
			}
			return out, nil
		}
		return nil, errInvalidValue("%s must be an array of attribute paths", name)
	}
	var err error
	if p.filter, err = str("filter"); err != nil {
		return p, err
	}
	_, fv, hasFilter := getField(body, "filter")
	p.hasFilter = hasFilter && fv != nil
	if p.sortBy, err = str("sortBy"); err != nil {
		return p, err
	}
	if p.sortOrder, err = str("sortOrder"); err != nil {
		return p, err
	}
	if p.attributes, err = list("attributes"); err != nil {
		return p, err
	}
	if p.excluded, err = list("excludedAttributes"); err != nil {
		return p, err
	}
	p.startIndex = num("startIndex", 1)
	p.count = num("count", h.maxResults)
	p.fix(h.maxResults)
	return p, nil
}

// query is listParams compiled for one resource type.
type query struct {
	rt         *resourceType
	filter     *compiledFilter
	sortBy     *attrRef
	descending bool
	proj       *projection
}

func compileQuery(rt *resourceType, p listParams) (*query, error) {
	q := &query{rt: rt}
	var err error
	if p.hasFilter {
		if p.filter == "" {
			return nil, errInvalidFilter("filter is empty")
		}
		if q.filter, err = parseFilter(rt, p.filter); err != nil {
			return nil, err
		}
	}
	if p.sortBy != "" {
		if len(p.sortBy) > maxFilterLength {
			return nil, errInvalidValue("sortBy is too long")
		}
		ap, err := parseAttrPathCached(p.sortBy)
		if err != nil {
			return nil, errInvalidValue("sortBy %q is not an attribute path", truncate(p.sortBy, 128))
		}
		ref, err := resolveAttrPath(rt, ap)
		if err != nil || ref.wholeExt {
			return nil, errInvalidValue("sortBy %q is not an attribute", truncate(p.sortBy, 128))
		}
		q.sortBy = &ref
	}
	switch strings.ToLower(p.sortOrder) {
	case "", "ascending":
	case "descending":
		q.descending = true
	default:
		return nil, errInvalidValue("sortOrder must be ascending or descending")
	}
	if q.proj, err = parseProjection(rt, p.attributes, p.excluded); err != nil {
		return nil, err
	}
	return q, nil
}

func (h *Handler) list(req *request, rts []*resourceType, p *listParams) error {
	if p == nil {
		lp := h.paramsFromQuery(req.r)
		p = &lp
	}
	queries := make([]*query, 0, len(rts))
	for _, rt := range rts {
		q, err := compileQuery(rt, *p)
		if err != nil {
			return err
		}
		queries = append(queries, q)
	}
	total := 0
	body := newListBody()
	defer body.release()
	gen := h.store.Generation(h.tenant) // before the snapshot: see pageCursors
	err := h.view(req.ctx, func(tx storage.ReadTx) error {
		total = 0
		body.reset()
		names := map[string]string{}
		var users userJSON
		// The window [offset, offset+limit) runs over the concatenation of
		// the resource types' results (users, then groups, for /.search).
		offset, limit := p.startIndex-1, p.count
		for _, q := range queries {
			n, recs, err := collect(tx, q, req.base, offset, limit, &h.cursors, gen, func(ids []string) (map[string][]*storage.Group, error) {
				return h.groupsOfUsers(tx, gen, ids)
			})
			if err != nil {
				return err
			}
			total += n
			offset = max(0, offset-n)
			limit -= len(recs)
			groupsOf, err := h.pageGroups(tx, gen, q, recs)
			if err != nil {
				return err
			}
			splice := q.rt == userResource && q.proj.returnsAll() && groupsOf != nil
			for _, rec := range recs {
				if splice && rec.doc == nil && rec.user != nil {
					// The stored attributes spliced, without a map
					// (userjson.go).
					mark := body.next()
					var ok bool
					if body.buf, ok = users.appendUser(body.buf, rec.user, req.base, groupsOf[rec.id]); ok {
						continue
					}
					body.undo(mark)
				}
				doc := rec.doc
				if doc == nil {
					o := outputOpts(q.proj)
					o.names = names
					o.groupsOf = groupsOf
					var err error
					if doc, err = rec.render(tx, req.base, o); err != nil {
						return err
					}
				}
				mark := body.next()
				out, err := appendResource(body.buf, q.rt, q.proj.apply(doc))
				if err != nil { // out is nil then
					body.undo(mark)
					return err
				}
				body.buf = out
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	body.write(req.w, total, p.startIndex)
	return nil
}

// pageGroups reads the groups of the page's users that are still to be
// rendered with their groups: their ids in one store read, and the
// records of those not in h.groups for this generation in another (nil
// when no user needs them).
func (h *Handler) pageGroups(tx storage.ReadTx, gen uint64, q *query, recs []record) (map[string][]*storage.Group, error) {
	if q.rt != userResource || !outputOpts(q.proj).groups {
		return nil, nil
	}
	var ids []string
	each := make(map[string][]string, len(recs)) // the groups read with the users
	read := true
	for _, rec := range recs {
		if rec.doc != nil || rec.user == nil {
			continue
		}
		ids = append(ids, rec.id)
		read = read && rec.groupsRead
		if len(rec.groupIDs) > 0 {
			each[rec.id] = rec.groupIDs
		}
	}
	switch {
	case len(ids) == 0:
		return nil, nil
	case read:
		return h.groupRecordsOf(tx, gen, each)
	}
	return h.groupsOfUsers(tx, gen, ids)
}

// groupsOfUsers reads the groups of the users ids: their ids in one
// store read, and the records of those not in h.groups for this
// generation in another. A user in no group is absent from the map,
// which is never nil.
func (h *Handler) groupsOfUsers(tx storage.ReadTx, gen uint64, ids []string) (map[string][]*storage.Group, error) {
	each, err := tx.GroupsOfEach(ids)
	if err != nil {
		return nil, err
	}
	return h.groupRecordsOf(tx, gen, each)
}

// groupRecordsOf is groupsOfUsers for users whose group ids each holds:
// the records of the groups not in h.groups for this generation in one
// store read.
func (h *Handler) groupRecordsOf(tx storage.ReadTx, gen uint64, each map[string][]string) (map[string][]*storage.Group, error) {
	known, missing := h.groups.lookup(gen, each)
	if len(missing) > 0 {
		read, err := tx.GetGroups(missing)
		if err != nil {
			return nil, err
		}
		for id, g := range read {
			known[id] = g
		}
		h.groups.put(gen, read)
	}
	out := make(map[string][]*storage.Group, len(each))
	for member, gids := range each {
		for _, gid := range gids {
			if g := known[gid]; g != nil {
				out[member] = append(out[member], g)
			}
		}
	}
	return out, nil
}

// groupRecords caches group records for one store generation, for the
// groups of the users on a page: a directory of 10,000 groups puts ~250
// different ones on a page of 100 users, each a point read and a decode
// (~40% of the page at a million users), and the next page names the same
// groups. Any write moves the generation and empties it (see pageCursors
// for why a generation read before the snapshot makes that safe).
type groupRecords struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]*storage.Group
}

// maxGroupRecords bounds the cache (a group record is a few hundred bytes).
const maxGroupRecords = 20000

// lookup returns the cached records of the groups in each (as a new map
// the caller may add to) and the ids it does not hold.
func (c *groupRecords) lookup(gen uint64, each map[string][]string) (map[string]*storage.Group, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	known := make(map[string]*storage.Group)
	var missing []string
	for _, gids := range each {
		for _, gid := range gids {
			if _, seen := known[gid]; seen {
				continue
			}
			g := (*storage.Group)(nil)
			if c.gen == gen {
				g = c.m[gid]
			}
			known[gid] = g
			if g == nil {
				missing = append(missing, gid)
			}
		}
	}
	return known, missing
}

func (c *groupRecords) put(gen uint64, read map[string]*storage.Group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.m == nil || len(c.m)+len(read) > maxGroupRecords {
		c.gen, c.m = gen, make(map[string]*storage.Group, len(read))
	}
	for id, g := range read {
		c.m[id] = g
	}
}

// search serves POST .../.search.
func (h *Handler) search(req *request, rts []*resourceType) error {
	body, err := h.readBody(req)
	if err != nil {
		return err
	}
	p, err := h.paramsFromSearch(body)
	if err != nil {
		return err
	}
	return h.list(req, rts, &p)
}

// collect finds the records q matches, in a stable order (id order, or
// the sort order with id breaking ties), and returns how many match and
// those in [offset, offset+limit).
//
// groups, if not nil, reads the groups of users (see groupsOfUsers) for a
// filter on them: the users an index lookup found get theirs with one
// read for all, instead of one read (or two) each as render does alone.
func collect(tx storage.ReadTx, q *query, base string, offset, limit int, cursors *pageCursors, gen uint64,
	groups func(userIDs []string) (map[string][]*storage.Group, error)) (int, []record, error) {
	if q.filter == nil && q.sortBy == nil {
		withGroups := q.rt == userResource && outputOpts(q.proj).groups
		return collectAll(tx, q.rt, offset, limit, cursors, gen, withGroups)
	}
	evalOpts := filterOpts(q.filter)
	lookups, planned := planFilter(q)
	keepDoc := planned
	if keepDoc {
		evalOpts = evalOpts.or(outputOpts(q.proj))
	}
	var matches []record
	var keys []sortKey
	total := 0
	consider := func(rec record) error {
		var doc map[string]any
		if q.filter != nil {
			var err error
			if doc, err = rec.render(tx, base, evalOpts); err != nil {
				return err
			}
			if !q.filter.match(doc) {
				return nil
			}
			if keepDoc {
				rec.doc = doc
			}
		}
		if q.sortBy != nil {
			k, err := sortKeyOf(tx, rec, doc, *q.sortBy, base)
			if err != nil {
				return err
			}
			matches, keys = append(matches, rec), append(keys, k)
			return nil
		}
		if total >= offset && total < offset+limit {
			matches = append(matches, rec)
		}
		total++
		return nil
	}
	if planned {
		recs, err := lookupRecords(tx, q.rt, lookups)
		if err != nil {
			return 0, nil, err
		}
		if q.rt == userResource && evalOpts.groups && groups != nil && len(recs) > 0 {
			ids := make([]string, len(recs))
			for i, rec := range recs {
				ids[i] = rec.id
			}
			if evalOpts.groupsOf, err = groups(ids); err != nil {
				return 0, nil, err
			}
		}
		for _, rec := range recs {
			if err := consider(rec); err != nil {
				return 0, nil, err
			}
		}
	} else if err := scanRecords(tx, q.rt, "", func(rec record) (bool, error) {
		return true, consider(rec)
	}); err != nil {
		return 0, nil, err
	}
	if q.sortBy == nil {
		return total, matches, nil
	}
	idx := make([]int, len(matches))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		c := compareSortKeys(keys[idx[a]], keys[idx[b]], q.descending)
		if c != 0 {
			return c < 0
		}
		return matches[idx[a]].id < matches[idx[b]].id
	})
	total = len(matches)
	var window []record
	for i := offset; i < total && i < offset+limit; i++ {
		window = append(window, matches[idx[i]])
	}
	return total, window, nil
}

func planFilter(q *query) ([]indexLookup, bool) {
	if q.filter == nil {
		return nil, false
	}
	return planLookups(q.rt, q.filter.root)
}

// collectAll pages through every record without filter or sort. A client
// paging through the tenant (Okta imports with count=100) continues from
// where its previous page ended, found in cursors; any other startIndex
// starts from the id the store finds at that position (UserIDAt), so no
// page reads the records before it. With withGroups, users come with
// their group ids (storage.ReadTx.UserPage).
func collectAll(tx storage.ReadTx, rt *resourceType, offset, limit int, cursors *pageCursors, gen uint64, withGroups bool) (int, []record, error) {
	total, known := cursors.total(gen, rt)
	var err error
	if !known {
		if rt == userResource {
			total, err = tx.CountUsers()
		} else {
			total, err = tx.CountGroups()
		}
		if err == nil {
			cursors.putTotal(gen, rt, total)
		}
	}
	if err != nil || limit <= 0 || offset >= total {
		return total, nil, err
	}
	after, seen := "", 0
	if id, ok := cursors.get(gen, rt, offset); ok {
		after, seen = id, offset
	} else if offset > 0 {
		// No page ended there: the store finds the record before the
		// window from its position, without reading what lies before.
		if rt == userResource {
			after, err = tx.UserIDAt(offset - 1)
		} else {
			after, err = tx.GroupIDAt(offset - 1)
		}
		if errors.Is(err, storage.ErrNotFound) {
			return total, nil, nil // deleted since the count: past the end
		}
		if err != nil {
			return total, nil, err
		}
		seen = offset
	}
	var recs []record
	if withGroups {
		// The window starts right after `after` (seen == offset).
		var users []*storage.User
		var groups map[string][]string
		if users, groups, err = tx.UserPage(after, limit); err != nil {
			return total, nil, err
		}
		recs = make([]record, len(users))
		for i, u := range users {
			recs[i] = record{id: u.ID, user: u, groupIDs: groups[u.ID], groupsRead: true}
		}
	} else {
		err = scanRecords(tx, rt, after, func(rec record) (bool, error) {
			if seen >= offset {
				recs = append(recs, rec)
			}
			seen++
			return len(recs) < limit, nil
		})
	}
	if err == nil && len(recs) > 0 {
		cursors.put(gen, rt, offset+len(recs), recs[len(recs)-1].id)
	}
	return total, recs, err
}

// pageCursors remembers, for the store generation they were read at, the
// id of the last record of recent pages: the record at a position is the
// same as long as the generation (bumped by every committed write of a
// user, group or membership; see storage.Store.Generation) is.
//
// It keeps the count of each resource type too: a count sums the store's
// counter shards, which right after a bulk load means stepping over every
// older version of each shard still in the memtables (~40% of a page of
// 100 at 50,000 users), and it is the same for every page of a generation.
type pageCursors struct {
	mu     sync.Mutex
	gen    uint64
	ids    map[string]string // resource type and position → id
	totals map[string]int    // resource type → count
}

const maxPageCursors = 256

func cursorKey(rt *resourceType, position int) string {
	return rt.Name + ":" + strconv.Itoa(position)
}

func (c *pageCursors) get(gen uint64, rt *resourceType, position int) (string, bool) {
	if c == nil || position == 0 {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return "", false
	}
	id, ok := c.ids[cursorKey(rt, position)]
	return id, ok
}

func (c *pageCursors) put(gen uint64, rt *resourceType, position int, id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.ids == nil {
		c.reset(gen)
	} else if len(c.ids) >= maxPageCursors {
		c.ids = map[string]string{}
	}
	c.ids[cursorKey(rt, position)] = id
}

// reset empties c for generation gen.
func (c *pageCursors) reset(gen uint64) {
	c.gen, c.ids, c.totals = gen, map[string]string{}, map[string]int{}
}

// total is the count of rt's records at generation gen, when known.
func (c *pageCursors) total(gen uint64, rt *resourceType) (int, bool) {
	if c == nil {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return 0, false
	}
	n, ok := c.totals[rt.Name]
	return n, ok
}

func (c *pageCursors) putTotal(gen uint64, rt *resourceType, n int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.ids == nil {
		c.reset(gen)
	}
	c.totals[rt.Name] = n
}

func scanRecords(tx storage.ReadTx, rt *resourceType, after string, fn func(record) (bool, error)) error {
	if rt == userResource {
		return tx.ScanUsers(after, func(u *storage.User) (bool, error) {
			return fn(record{id: u.ID, user: u})
		})
	}
	return tx.ScanGroups(after, func(g *storage.Group) (bool, error) {
		return fn(record{id: g.ID, group: g})
	})
}

// sortKey is the value a resource sorts by.
type sortKey struct {
	present bool
	isNum   bool
	num     float64
	isTime  bool
	tm      time.Time
	str     string
}

// sortKeyOf reads the sortBy value of rec (RFC 7644 §3.4.2.3): for a
// multi-valued attribute, the primary value or else the first.
func sortKeyOf(tx storage.ReadTx, rec record, doc map[string]any, ref attrRef, base string) (sortKey, error) {
	if doc == nil {
		o := renderOpts{}
		if ref.isTop("groups") {
			o.groups = true
		}
		if ref.isTop("members") {
			o.members, o.memberDisplay = true, true
		}
		var err error
		if doc, err = rec.render(tx, base, o); err != nil {
			return sortKey{}, err
		}
	}
	c := containerOf(doc, ref, false)
	_, v, ok := getField(c, ref.name)
	if !ok {
		return sortKey{}, nil
	}
	if list, isList := v.([]any); isList {
		v = nil
		for _, e := range list {
			if isPrimary(e) {
				v = e
				break
			}
		}
		if v == nil && len(list) > 0 {
			v = list[0]
		}
	}
	leaf := ref.leaf()
	sub := ref.sub
	if sub == "" && ref.def != nil && ref.def.Type == typeComplex {
		sub, leaf = "value", ref.def.valueSub()
	}
	if sub != "" {
		_, v, _ = getField(asMap(v), sub)
	}
	switch t := v.(type) {
	case nil:
		return sortKey{}, nil
	case json.Number:
		f, _ := t.Float64()
		return sortKey{present: true, isNum: true, num: f}, nil
	case bool:
		if t {
			return sortKey{present: true, isNum: true, num: 1}, nil
		}
		return sortKey{present: true, isNum: true}, nil
	case string:
		if leaf != nil && leaf.Type == typeDateTime {
			if tm, ok := parseDateTime(t); ok {
				return sortKey{present: true, isTime: true, tm: tm}, nil
			}
		}
		if leaf == nil || !leaf.CaseExact {
			t = strings.ToLower(t)
		}
		return sortKey{present: true, str: t}, nil
	}
	return sortKey{}, nil
}

// compareSortKeys orders keys; resources without a value come last in
// either direction.
func compareSortKeys(a, b sortKey, descending bool) int {
	switch {
	case !a.present && !b.present:
		return 0
	case !a.present:
		return 1
	case !b.present:
		return -1
	}
	var c int
	switch {
	case a.isNum && b.isNum:
		c = compareFloats(a.num, b.num)
	case a.isTime && b.isTime:
		c = a.tm.Compare(b.tm)
	default:
		c = strings.Compare(a.str, b.str)
	}
	if descending {
		c = -c
	}
	return c
}

func compareFloats(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
