// Package tenant is the domain of the tenant lifecycle: states and the transitions
// between them, plans and their limits, usage, and the typed errors every adapter maps.
// It imports no AWS package so the rules can be read and tested on their own.
package tenant

import "slices"

// State is where a tenant is in its lifecycle.
type State string

// The nine lifecycle states. PROVISIONING and PURGED make the two ends explicit.
const (
	Provisioning State = "PROVISIONING"
	Active       State = "ACTIVE"
	Upgrading    State = "UPGRADING"
	Downgrading  State = "DOWNGRADING"
	Suspended    State = "SUSPENDED"
	Deleting     State = "DELETING"
	Deleted      State = "DELETED"
	Reactivating State = "REACTIVATING"
	Purged       State = "PURGED"
)

// States lists every state in lifecycle order.
var States = []State{Provisioning, Active, Upgrading, Downgrading, Suspended, Deleting, Deleted, Reactivating, Purged}

// transitions is the whole lifecycle graph. Anything not listed is refused. A deletion
// that fails goes back where it came from (ACTIVE or SUSPENDED), like a failed
// reactivation.
var transitions = map[State][]State{
	Provisioning: {Active, Purged},
	Active:       {Upgrading, Downgrading, Suspended, Deleting},
	Upgrading:    {Active},
	Downgrading:  {Active},
	Suspended:    {Reactivating, Deleting},
	Deleting:     {Deleted, Active, Suspended},
	Deleted:      {Reactivating, Purged},
	Reactivating: {Active, Suspended, Deleted},
	Purged:       {},
}

// Valid reports whether s is one of the nine states.
func (s State) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Allowed returns the states s may move to, in table order (a copy).
func (s State) Allowed() []State {
	return slices.Clone(transitions[s])
}

// CanTransition reports whether from → to is in the transition table.
func CanTransition(from, to State) bool {
	return slices.Contains(transitions[from], to)
}

// CheckTransition returns *InvalidTransitionError when from → to is not allowed.
func CheckTransition(from, to State) error {
	if CanTransition(from, to) {
		return nil
	}
	return &InvalidTransitionError{From: from, To: to, Allowed: from.Allowed()}
}

// ParseState returns the state named s, or a ValidationError.
func ParseState(s string) (State, error) {
	st := State(s)
	if !st.Valid() {
		return "", &ValidationError{Field: "state", Reason: "unknown state " + quote(s) + "; one of " + joinStates(States)}
	}
	return st, nil
}
