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
}

// userSearch holds the current index and the rebuild in flight.
type userSearch struct {
	mu         sync.Mutex
	index      *userIndex
	building   bool
	lastStart  time.Time
	buildError error
}

// searchIndex returns an index the filtered listing may use, or nil (the
// caller scans the store), and starts a rebuild when the tenant changed.
func (s *Service) searchIndex(gen uint64) *userIndex {
	s.search.mu.Lock()
	defer s.search.mu.Unlock()
	idx := s.search.index
	now := s.now()
	if (idx == nil || idx.gen != gen) && !s.search.building && now.Sub(s.search.lastStart) >= indexRebuildEvery {
		s.search.building, s.search.lastStart = true, now
		go s.rebuildIndex()
	}
	if idx == nil || (idx.gen != gen && now.Sub(idx.built) > indexMaxAge) {
		return nil
	}
	return idx
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
			e := indexEntry{id: u.ID, userName: strings.ToLower(u.UserName), displayName: strings.ToLower(u.DisplayName), source: u.Source}
			for _, m := range u.Emails {
				e.emails = append(e.emails, strings.ToLower(m))
			}
			idx.entries = append(idx.entries, e)
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
}

// candidates lists, from the index, the ids after cursor of users whose
// indexed fields match, at most max of them (and whether more may follow).
func (idx *userIndex) candidates(cursor, filter, source string, max int) (ids []string, more bool) {
	i := sort.Search(len(idx.entries), func(i int) bool { return idx.entries[i].id > cursor })
	for ; i < len(idx.entries); i++ {
		e := &idx.entries[i]
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
	s.search.building, s.search.lastStart = true, s.now()
	s.search.mu.Unlock()
	s.rebuildIndex()
	s.search.mu.Lock()
	defer s.search.mu.Unlock()
	return s.search.buildError
}
