package store

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/tenantflow/tenantflow/shared/tenant"
)

// BulkItems returns exactly the items CreateTenant and CreateOperation would write for
// tenants and ops (each tenant with its first audit record), for bulk loaders that
// fill an empty key space with BatchWriteItem: the local stack's seeding and the
// scale tests write thousands of them. The items carry no condition, so a loader must
// only use them where nothing exists yet; flows never do.
func (s *Store) BulkItems(tenants []*tenant.Tenant, ops []*tenant.Operation, by Actor) ([]map[string]types.AttributeValue, error) {
	out := make([]map[string]types.AttributeValue, 0, 2*len(tenants)+len(ops))
	for _, t := range tenants {
		_, item, audit, err := s.tenantItems(t, by)
		if err != nil {
			return nil, err
		}
		out = append(out, item, audit)
	}
	for _, op := range ops {
		_, item, err := s.operationItem(op)
		if err != nil {
			return nil, err
		}
		out = append(out, item)
	}
	return out, nil
}
