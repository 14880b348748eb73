// Command reconcile runs on an EventBridge schedule and releases tenants held by an
// operation whose Step Functions execution is no longer running.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app"
)

func main() {
	lambda.Start(app.Reconciler("ReconcileFunction").Handle)
}
