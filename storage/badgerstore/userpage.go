package badgerstore

import "github.com/portcullis/portcullis/storage"

// UserPage is ScanUsers and GroupsOfEach, one after the other: in an
// embedded store neither is a round trip, so there is nothing to save by
// reading both at once.
func (t *tx) UserPage(after string, limit int) ([]*storage.User, map[string][]string, error) {
	var users []*storage.User
	if limit > 0 {
		err := t.ScanUsers(after, func(u *storage.User) (bool, error) {
			users = append(users, u)
			return len(users) < limit, nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	groups, err := t.GroupsOfEach(ids)
	if err != nil {
		return nil, nil, err
	}
	return users, groups, nil
}
