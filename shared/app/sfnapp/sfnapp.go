// Package sfnapp is the wiring that links the Step Functions client: only the
// functions whose Needs start or describe executions import it.
package sfnapp

import (
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/tenantflow/tenantflow/shared/app/core"
	"github.com/tenantflow/tenantflow/shared/apphook"
	"github.com/tenantflow/tenantflow/shared/flow"
	"github.com/tenantflow/tenantflow/shared/flow/sfnexec"
)

// Executions is the core.Adapter that provides the flow kit's flow.Executions on the
// Step Functions client.
func Executions(d *core.Deps) {
	if !d.Needs().StepFunctions() {
		d.Refuse("Step Functions")
	}
	core.Provide[flow.Executions](d, sfnexec.New(sfn.NewFromConfig(d.AWS)))
}

// Tasks is the core.Adapter that provides apphook.Tasks (answers to callback Tasks)
// on the Step Functions client.
func Tasks(d *core.Deps) {
	if !d.Needs().Callback {
		d.Refuse("Step Functions callbacks")
	}
	core.Provide[apphook.Tasks](d, sfnexec.Tasks{API: sfn.NewFromConfig(d.AWS)})
}
