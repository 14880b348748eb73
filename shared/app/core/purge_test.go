package core

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/shared/purge/sources"
	"github.com/tenantflow/tenantflow/shared/store"
)

// purgePorts says, for each method of the purge's DynamoDB ports
// (shared/purge/sources), which Needs field grants it, with which IAM action on which
// resource: the purge's counterpart of storePort. Its S3 port is held to its grants by
// TestS3GrantsMatchCode, which reads the calls from the code.
var purgePorts = map[reflect.Type]map[string][]Grant{
	reflect.TypeFor[sources.DataTable](): {
		"Query":          {{Action: "dynamodb:Query", Resource: dataTable}},
		"BatchWriteItem": {{Action: "dynamodb:BatchWriteItem", Resource: dataTable}},
	},
	reflect.TypeFor[sources.ControlPlane](): {
		// The tenant's partition, and the items naming it in the ByTenant index.
		"Query":          {{Action: "dynamodb:Query", Resource: tenantsTable}, {Action: "dynamodb:Query", Resource: tenantsTable + "/index/" + store.ByTenantIndex}},
		"GetItem":        {{Action: "dynamodb:GetItem", Resource: tenantsTable}},
		"BatchWriteItem": {{Action: "dynamodb:BatchWriteItem", Resource: tenantsTable}},
	},
}

// TestPurgePortsAreGranted fails when a purge port gains a method without an IAM
// mapping, and checks that the wiring of every function that holds a port grants
// each of its methods: the purge can call nothing its role does not allow.
func TestPurgePortsAreGranted(t *testing.T) {
	for port, methods := range purgePorts {
		for i := range port.NumMethod() {
			if _, ok := methods[port.Method(i).Name]; !ok {
				t.Errorf("sources.%s has %s but purgePorts does not say which IAM action authorises it", port.Name(), port.Method(i).Name)
			}
		}
	}
	// Which ports each purge function is built with (s3app.PurgeSources).
	uses := map[string][]reflect.Type{}
	for id, n := range Wirings {
		if !strings.HasPrefix(id, "Purge") || !n.PurgeSources() {
			continue // the export's functions read the same sources through their own ports
		}
		if n.Data {
			uses[id] = append(uses[id], reflect.TypeFor[sources.DataTable]())
		}
		if slices.Contains(n.Queries, QueryTable) {
			uses[id] = append(uses[id], reflect.TypeFor[sources.ControlPlane]())
		}
	}
	calls := map[string][]string{ // the port methods each step calls
		"PurgeStartFunction":  {"Query", "GetItem"},
		"PurgeDeleteFunction": {"Query", "BatchWriteItem", "GetItem"},
		"PurgeVerifyFunction": {"Query", "GetItem"},
	}
	for id, ports := range uses {
		granted := Wirings[id].Grants()
		for _, port := range ports {
			for name, grants := range purgePorts[port] {
				if !slices.Contains(calls[id], name) {
					continue
				}
				for _, g := range grants {
					if !slices.ContainsFunc(granted, func(x Grant) bool { return x.Action == g.Action && x.Resource == g.Resource }) {
						t.Errorf("%s calls %s.%s but its wiring does not grant %s on %s", id, port.Name(), name, g.Action, g.Resource)
					}
				}
			}
		}
	}
	if len(uses) != len(calls) {
		t.Errorf("purge functions with ports %d, with listed calls %d", len(uses), len(calls))
	}
}
