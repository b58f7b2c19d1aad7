package operator

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/storage"
)

// A search by name cannot use the store's indexes (they match whole
// userNames and emails, not substrings), and scanning 100,000 stored
// users costs seconds. So filtered listings go through an in-memory index
// of every user's searchable fields, in id order (~100 bytes a user). It is
// rebuilt in the background when a search finds the store's generation has
// moved, at most once per indexRebuildEvery; meanwhile the previous index
// answers, and every user it returns is read again from the store and
// checked against the filter, so a stale index can miss a user created or
// renamed since the build (an exact userName or email is still found
// through the store's indexes) but never shows a wrong one.
//
// Users written through this process's operator Service and SCIM endpoint
// are not missed: each such write is noted (NoteUser) in a small overlay of
// recent entries the listing merges with the index, so a user created a
// moment ago is listed at once by substring or source. A rebuild drops the
// entries its snapshot already holds. Writers that do not note (sign-in's
// JIT users, a directory pull) wait for the background rebuild.
const (
	indexRebuildEvery = 10 * time.Second
	// indexMaxAge: an index older than this with the generation moved is
	// not trusted; the search scans the store instead until it is rebuilt.
	indexMaxAge = 5 * time.Minute
)

type userIndex struct {
	gen     uint64
	built   time.Time
	entries []indexEntry // id order
}

type indexEntry struct {
	id, userName, displayName, source string // lower-cased names
	emails                            []string
	version                           int64
}

func newIndexEntry(u *storage.User) indexEntry {
	e := indexEntry{id: u.ID, userName: strings.ToLower(u.UserName), displayName: strings.ToLower(u.DisplayName),
		source: u.Source, version: u.Version}
	for _, m := range u.Emails {
		e.emails = append(e.emails, strings.ToLower(m))
	}
	return e
}

// recentEntry is a user noted since a rebuild started; seq orders notes.
type recentEntry struct {
	entry indexEntry
	seq   uint64
}

// maxRecent is the overlay size past which a note asks for a rebuild (the
// overlay is copied and sorted by every filtered listing).
const maxRecent = 2000

// maxRecentMerged: with more recent entries than this (a bulk write such as
// a disconnect, while the rebuild it started runs), listings scan the store
// instead, which is slower but current.
const maxRecentMerged = 8 * maxRecent

// userSearch holds the current index and the rebuild in flight.
type userSearch struct {
	mu         sync.Mutex
	index      *userIndex
	building   bool
	lastStart  time.Time
	buildError error
	// recent are users noted since the snapshot of the last rebuild, by id;
	// seq counts notes, and buildSeq is seq when the rebuild in flight
	// started (its snapshot holds every write noted up to it).
	recent   map[string]recentEntry
	seq      uint64
	buildSeq uint64
}

// NoteUser tells the search index that u was just written (committed), so
// filtered listings show it at once rather than after the next rebuild.
// The operator calls it for its own writes; the wiring calls it for the
// SCIM endpoint's (scimhandler.Config.UserWritten). Cheap; safe for
// concurrent use. A deleted user needs no note: listings read every
// candidate again from the store.
func (s *Service) NoteUser(u *storage.User) {
	if u == nil || u.ID == "" {
		return
	}
	e := newIndexEntry(u)
	s.search.mu.Lock()
	defer s.search.mu.Unlock()
	if s.search.index == nil && !s.search.building {
		return // no index: listings scan the store, which has the write
	}
	if old, ok := s.search.recent[u.ID]; ok && old.entry.version > e.version {
		return // a later write was noted first
	}
	if s.search.recent == nil {
		s.search.recent = map[string]recentEntry{}
	}
	s.search.seq++
	s.search.recent[u.ID] = recentEntry{entry: e, seq: s.search.seq}
	if len(s.search.recent) > maxRecent {
		s.startRebuildLocked(s.now())
	}
}

// startRebuildLocked starts a background rebuild unless one is in flight
// or one started less than indexRebuildEvery ago. s.search.mu is held.
func (s *Service) startRebuildLocked(now time.Time) {
	if s.search.building || now.Sub(s.search.lastStart) < indexRebuildEvery {
		return
	}
	s.search.building, s.search.lastStart, s.search.buildSeq = true, now, s.search.seq
	go s.rebuildIndex()
}

// recentSorted copies the overlay in id order. s.search.mu is held.
func (s *Service) recentSorted() []indexEntry {
	if len(s.search.recent) == 0 {
		return nil
	}
	out := make([]indexEntry, 0, len(s.search.recent))
	for _, r := range s.search.recent {
		out = append(out, r.entry)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// searchIndex returns an index the filtered listing may use with the
// recent entries to merge into it, or nil (the caller scans the store), and
// starts a rebuild when the tenant changed.
func (s *Service) searchIndex(gen uint64) (*userIndex, []indexEntry) {
	s.search.mu.Lock()
	defer s.search.mu.Unlock()
	idx := s.search.index
	now := s.now()
	if idx == nil || idx.gen != gen {
		s.startRebuildLocked(now)
	}
	if idx == nil || (idx.gen != gen && now.Sub(idx.built) > indexMaxAge) || len(s.search.recent) > maxRecentMerged {
		return nil, nil
	}
	return idx, s.recentSorted()
}

// rebuildIndex scans every user once into a new index.
func (s *Service) rebuildIndex() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gen := s.store.Generation(s.tenant)
	idx := &userIndex{gen: gen, built: s.now()}
	err := s.store.View(ctx, s.tenant, func(tx storage.ReadTx) error {
		idx.entries = idx.entries[:0]
		return tx.ScanUsers("", func(u *storage.User) (bool, error) {
			idx.entries = append(idx.entries, newIndexEntry(u))
			return true, nil
		})
	})
	s.search.mu.Lock()
	defer s.search.mu.Unlock()
	s.search.building, s.search.buildError = false, err
	if err != nil {
		s.logger.Warn("operator: building the user search index failed")
		return
	}
	s.search.index = idx
	for id, r := range s.search.recent {
		if r.seq <= s.search.buildSeq {
			delete(s.search.recent, id) // the snapshot has it
		}
	}
}

// candidates lists, from the index merged with the recent entries (both
// in id order; a recent entry of the same id replaces the indexed one), the
// ids after cursor of users whose indexed fields match, at most max of
// them (and whether more may follow).
func (idx *userIndex) candidates(recent []indexEntry, cursor, filter, source string, max int) (ids []string, more bool) {
	i := sort.Search(len(idx.entries), func(i int) bool { return idx.entries[i].id > cursor })
	j := sort.Search(len(recent), func(j int) bool { return recent[j].id > cursor })
	for i < len(idx.entries) || j < len(recent) {
		var e *indexEntry
		switch {
		case j == len(recent) || (i < len(idx.entries) && idx.entries[i].id < recent[j].id):
			e = &idx.entries[i]
			i++
		case i < len(idx.entries) && idx.entries[i].id == recent[j].id:
			e = &recent[j]
			if idx.entries[i].version > e.version {
				e = &idx.entries[i]
			}
			i, j = i+1, j+1
		default:
			e = &recent[j]
			j++
		}
		if source != "" && e.source != source {
			continue
		}
		if filter != "" && !entryMatches(e, filter) {
			continue
		}
		if len(ids) == max {
			return ids, true
		}
		ids = append(ids, e.id)
	}
	return ids, false
}

func entryMatches(e *indexEntry, filter string) bool {
	if strings.Contains(e.userName, filter) || strings.Contains(e.displayName, filter) {
		return true
	}
	for _, m := range e.emails {
		if strings.HasPrefix(m, filter) {
			return true
		}
	}
	return false
}

// WarmSearchIndex builds the search index now (the wiring may call it at
// start, so the first search does not fall back to a scan).
func (s *Service) WarmSearchIndex(ctx context.Context) error {
	s.search.mu.Lock()
	if s.search.building {
		s.search.mu.Unlock()
		return nil
	}
	s.search.building, s.search.lastStart, s.search.buildSeq = true, s.now(), s.search.seq
	s.search.mu.Unlock()
	s.rebuildIndex()
	s.search.mu.Lock()
	defer s.search.mu.Unlock()
	return s.search.buildError
}
