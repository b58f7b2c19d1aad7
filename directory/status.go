package directory

import "time"

// Results of a sync.
const (
	ResultOK     = "ok"
	ResultFailed = "failed"
)

// Counts are what one sync did.
type Counts struct {
	UsersCreated       int `json:"usersCreated"`
	UsersUpdated       int `json:"usersUpdated"`
	UsersDeactivated   int `json:"usersDeactivated"`
	UsersReactivated   int `json:"usersReactivated"`
	UsersSkipped       int `json:"usersSkipped"` // held by a non-Google user of the same userName
	GroupsCreated      int `json:"groupsCreated"`
	GroupsUpdated      int `json:"groupsUpdated"`
	GroupsDeleted      int `json:"groupsDeleted"`
	MembershipsAdded   int `json:"membershipsAdded"`
	MembershipsRemoved int `json:"membershipsRemoved"`
	// APICalls counts HTTP requests to the Directory and Reports APIs,
	// retries included (token requests are not counted).
	APICalls int64 `json:"apiCalls"`
	// Retries counts answers that were retried (429, 403 rate limit, 5xx).
	Retries int64 `json:"retries"`
}

// writes says whether the counts record any store change.
func (c Counts) writes() bool {
	return c.UsersCreated+c.UsersUpdated+c.UsersDeactivated+c.UsersReactivated+
		c.GroupsCreated+c.GroupsUpdated+c.GroupsDeleted+c.MembershipsAdded+c.MembershipsRemoved > 0
}

// Status is the state of a tenant's sync, for the admin API.
type Status struct {
	Running   bool          `json:"running"`
	LastStart time.Time     `json:"lastStart,omitzero"`
	LastEnd   time.Time     `json:"lastEnd,omitzero"`
	Duration  time.Duration `json:"durationNanos"`
	// Result is ResultOK, ResultFailed, or "" before the first sync ends.
	Result    string    `json:"result,omitempty"`
	Counts    Counts    `json:"counts"`
	LastError string    `json:"lastError,omitempty"`
	NextRun   time.Time `json:"nextRun,omitzero"`

	// LastActivityPoll is when the Reports API was last polled, and
	// ActivityError what its last failure said ("" once one succeeds).
	LastActivityPoll time.Time `json:"lastActivityPoll,omitzero"`
	ActivityError    string    `json:"activityError,omitempty"`
	// ActivityApplied counts activities that changed the store.
	ActivityApplied int `json:"activityApplied"`

	// LeaseHeld says whether this replica holds the tenant's pull lease and
	// so runs the schedule (lease.go); NextRun is set only while it does.
	// Of replicas sharing a database, the others show the syncs asked of
	// them only.
	LeaseHeld bool `json:"leaseHeld"`
}
