package status

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestSummarize(t *testing.T) {
	zeros := func(counts map[string]int) map[string]int {
		m := map[string]int{}
		for _, s := range Statuses() {
			m[s] = counts[s]
		}
		return m
	}
	cur := Current{Number: 7, Checksum: "sha256:aa"}
	for _, tc := range []struct {
		name  string
		cur   Current
		views []InstanceView
		want  Summary
	}{
		{
			name: "no instances",
			cur:  cur,
			want: Summary{ByStatus: zeros(nil), CurrentDeployment: 7, Rollout: "0/0", Complete: true, Deployments: map[uint64][]string{}},
		},
		{
			name: "all healthy",
			cur:  cur,
			views: []InstanceView{
				{"gw-b", Healthy, 7},
				{"gw-a", Healthy, 7},
			},
			want: Summary{
				Instances: 2, ByStatus: zeros(map[string]int{Healthy: 2}), CurrentDeployment: 7,
				UpToDate: 2, Rollout: "2/2", Complete: true,
				Deployments: map[uint64][]string{7: {"gw-a", "gw-b"}},
			},
		},
		{
			name: "rollout in progress with drift",
			cur:  cur,
			views: []InstanceView{
				{"gw-c", OnlyHeartbeat, 6},
				{"gw-a", Healthy, 7},
				{"gw-e", Pending, 0},
				{"gw-b", Healthy, 7},
				// Applied 7 once, but lost: not counted as up to date.
				{"gw-d", LostConnection, 7},
				{"gw-f", Offline, 5},
				// Right number, wrong checksum or not ready.
				{"gw-g", OnlyHeartbeat, 7},
			},
			want: Summary{
				Instances: 7,
				ByStatus: zeros(map[string]int{
					Healthy: 2, OnlyHeartbeat: 2, LostConnection: 1, Offline: 1, Pending: 1,
				}),
				CurrentDeployment: 7, UpToDate: 2, Rollout: "2/7", Complete: false,
				Deployments: map[uint64][]string{
					0: {"gw-e"}, 5: {"gw-f"}, 6: {"gw-c"}, 7: {"gw-a", "gw-b", "gw-d", "gw-g"},
				},
			},
		},
		{
			name:  "no deployment yet",
			cur:   Current{},
			views: []InstanceView{{"gw-a", Healthy, 0}, {"gw-b", Pending, 0}},
			want: Summary{
				Instances: 2, ByStatus: zeros(map[string]int{Healthy: 1, Pending: 1}),
				UpToDate: 1, Rollout: "1/2", Deployments: map[uint64][]string{0: {"gw-a", "gw-b"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Summarize(tc.cur, tc.views)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Summarize =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestSummaryJSONShape(t *testing.T) {
	// Dashboards rely on every key being there, even for an empty group.
	b, err := json.Marshal(Summarize(Current{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"instances":0,"by_status":{"Healthy":0,"Lost Connection":0,"Offline":0,"Only Heartbeat":0,"Pending":0},` +
		`"current_deployment":0,"up_to_date":0,"rollout":"0/0","complete":true,"deployments":{}}`
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}
}
