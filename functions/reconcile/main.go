// Command reconcile runs on an EventBridge schedule. It ends every open operation
// and every open export job whose Step Functions execution never started or is no
// longer running, releasing what it holds (a tenant, a multipart upload).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/tenantflow/tenantflow/shared/app/reconcileapp"
)

func main() {
	lambda.Start(reconcileapp.Reconciler("ReconcileFunction").Handle)
}
