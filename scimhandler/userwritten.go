package scimhandler

import "github.com/portcullis/portcullis/storage"

// recordingTx remembers the users a write transaction stored, so that
// Config.UserWritten hears of them once (and only if) it commits. fn may
// run several times on conflicts; each run gets its own recordingTx and
// only the committed run's is reported.
type recordingTx struct {
	storage.Tx
	users []*storage.User
}

func (t *recordingTx) PutUser(u *storage.User) error {
	if err := t.Tx.PutUser(u); err != nil {
		return err
	}
	c := *u // as stored (the store set Version); later edits of u are not ours
	c.Emails = append([]string(nil), u.Emails...)
	t.users = append(t.users, &c)
	return nil
}

// report gives each user written to fn, the last write of a user only.
func (t *recordingTx) report(fn func(*storage.User)) {
	last := make(map[string]int, len(t.users))
	for i, u := range t.users {
		last[u.ID] = i
	}
	for i, u := range t.users {
		if last[u.ID] == i {
			fn(u)
		}
	}
}
