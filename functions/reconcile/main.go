// Command reconcile runs on an EventBridge schedule and releases tenants held by an
// operation whose Step Functions execution is no longer running.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/reconcileapp"
)

func main() {
	lambda.Start(reconcileapp.Reconciler("ReconcileFunction").Handle)
}
