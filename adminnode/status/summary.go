package status

import (
	"fmt"
	"slices"
)

// InstanceView is one instance as the summary needs it: its derived status
// and the deployment it last reported (0: none).
type InstanceView struct {
	Name              string
	Status            string
	AppliedDeployment uint64
}

// Summary is a group's instances summed up, for the API and dashboards.
// Maps are never nil, so the JSON shape does not depend on the fleet.
type Summary struct {
	Instances int `json:"instances"`
	// ByStatus holds every status of Statuses, zeros included.
	ByStatus          map[string]int `json:"by_status"`
	CurrentDeployment uint64         `json:"current_deployment"`
	// UpToDate counts the Healthy instances, out of all Instances; see the
	// package documentation for why.
	UpToDate int    `json:"up_to_date"`
	Rollout  string `json:"rollout"` // "UpToDate/Instances", e.g. "3/4"
	Complete bool   `json:"complete"`
	// Deployments lists, per deployment number reported, the instances
	// running it, by name; 0 gathers those that have applied none. Every
	// instance appears once, so drift within a group is visible.
	Deployments map[uint64][]string `json:"deployments"`
}

// Summarize sums up a group's instances against its current deployment.
func Summarize(cur Current, views []InstanceView) Summary {
	s := Summary{
		Instances:         len(views),
		ByStatus:          make(map[string]int, len(Statuses())),
		CurrentDeployment: cur.Number,
		Deployments:       make(map[uint64][]string),
	}
	for _, st := range Statuses() {
		s.ByStatus[st] = 0
	}
	for _, v := range views {
		s.ByStatus[v.Status]++
		if v.Status == Healthy {
			s.UpToDate++
		}
		s.Deployments[v.AppliedDeployment] = append(s.Deployments[v.AppliedDeployment], v.Name)
	}
	for _, names := range s.Deployments {
		slices.Sort(names)
	}
	s.Rollout = fmt.Sprintf("%d/%d", s.UpToDate, s.Instances)
	s.Complete = s.UpToDate == s.Instances
	return s
}
