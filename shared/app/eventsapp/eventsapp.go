// Package eventsapp is the wiring that links the EventBridge client: only the
// functions whose Needs publish lifecycle events import it.
package eventsapp

import (
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/events"
	"github.com/tenantflow/tenantflow/shared/events/bus"
)

// Publisher is the core.Adapter that provides an events.Publisher on the lifecycle
// bus.
func Publisher(d *core.Deps) {
	if !d.Needs().Events {
		d.Refuse("the lifecycle event bus")
	}
	core.Provide[events.Publisher](d, bus.NewPublisher(eventbridge.NewFromConfig(d.AWS), d.Config.EventBus))
}
