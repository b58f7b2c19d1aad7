package scimhandler

import "strings"

// Schema URNs of the resources this service provider serves (RFC 7643).
const (
	schemaUser           = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup          = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaEnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaSchema         = "urn:ietf:params:scim:schemas:core:2.0:Schema"
	schemaResourceType   = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	schemaSPConfig       = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
)

// attrType is an RFC 7643 §2.3 data type.
type attrType string

const (
	typeString    attrType = "string"
	typeBoolean   attrType = "boolean"
	typeDecimal   attrType = "decimal"
	typeInteger   attrType = "integer"
	typeDateTime  attrType = "dateTime"
	typeBinary    attrType = "binary"
	typeReference attrType = "reference"
	typeComplex   attrType = "complex"
)

// Mutability and returned characteristics (RFC 7643 §7).
const (
	mutReadOnly  = "readOnly"
	mutReadWrite = "readWrite"
	mutImmutable = "immutable"
	mutWriteOnly = "writeOnly"

	retAlways  = "always"
	retNever   = "never"
	retDefault = "default"
)

// attribute is one attribute definition. It serves both as the /Schemas
// representation and as the rules the handler applies: filters compare by
// Type and CaseExact, input is coerced to Type, and Mutability decides what
// a client may write.
type attribute struct {
	Name            string       `json:"name"`
	Type            attrType     `json:"type"`
	SubAttributes   []*attribute `json:"subAttributes,omitempty"`
	MultiValued     bool         `json:"multiValued"`
	Description     string       `json:"description"`
	Required        bool         `json:"required"`
	CanonicalValues []string     `json:"canonicalValues,omitempty"`
	CaseExact       bool         `json:"caseExact"`
	Mutability      string       `json:"mutability"`
	Returned        string       `json:"returned"`
	Uniqueness      string       `json:"uniqueness"`
	ReferenceTypes  []string     `json:"referenceTypes,omitempty"`
}

func attr(name string, t attrType, description string) *attribute {
	return &attribute{Name: name, Type: t, Description: description,
		Mutability: mutReadWrite, Returned: retDefault, Uniqueness: "none"}
}

func (a *attribute) required() *attribute           { a.Required = true; return a }
func (a *attribute) caseExact() *attribute          { a.CaseExact = true; return a }
func (a *attribute) multi() *attribute              { a.MultiValued = true; return a }
func (a *attribute) mutability(m string) *attribute { a.Mutability = m; return a }
func (a *attribute) returned(r string) *attribute   { a.Returned = r; return a }
func (a *attribute) unique(u string) *attribute     { a.Uniqueness = u; return a }
func (a *attribute) refs(types ...string) *attribute {
	a.ReferenceTypes = types
	return a
}
func (a *attribute) canonical(values ...string) *attribute {
	a.CanonicalValues = values
	return a
}
func (a *attribute) sub(subs ...*attribute) *attribute {
	a.SubAttributes = subs
	return a
}

// subAttr finds a sub-attribute by name, case-insensitively.
func (a *attribute) subAttr(name string) *attribute {
	if a == nil {
		return nil
	}
	return findAttr(a.SubAttributes, name)
}

// isReadOnly says whether clients may not set the attribute.
func (a *attribute) isReadOnly() bool { return a != nil && a.Mutability == mutReadOnly }

// valueSub is the sub-attribute a multi-valued complex attribute is
// compared by when a filter names only the attribute (RFC 7644 §3.4.2.2:
// "emails co ..." compares the "value" sub-attribute).
func (a *attribute) valueSub() *attribute { return a.subAttr("value") }

func findAttr(list []*attribute, name string) *attribute {
	for _, a := range list {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

// schema is one schema definition served on /Schemas.
type schema struct {
	ID          string
	Name        string
	Description string
	Attributes  []*attribute
}

// multiValuedComplex builds the usual value/display/type/primary shape.
func multiValuedComplex(name, description string, valueType attrType, types ...string) *attribute {
	value := attr("value", valueType, "The value of the "+name+" entry.")
	if valueType == typeReference {
		value.refs("external")
	}
	return attr(name, typeComplex, description).multi().sub(
		value,
		attr("display", typeString, "A human-readable name, primarily used for display purposes.").mutability(mutReadWrite),
		attr("type", typeString, "A label indicating the function of the entry.").canonical(types...),
		attr("primary", typeBoolean, "Whether this is the preferred entry; at most one entry is primary."),
	)
}

// commonAttributes are the attributes every resource has (RFC 7643 §3.1).
// They are not listed on /Schemas but filters, sorting and projection use
// their definitions.
var commonAttributes = []*attribute{
	attr("id", typeString, "Identifier of the resource, issued by the service provider.").
		caseExact().mutability(mutReadOnly).returned(retAlways).unique("server"),
	attr("externalId", typeString, "Identifier of the resource as defined by the provisioning client.").caseExact(),
	attr("meta", typeComplex, "Resource metadata.").mutability(mutReadOnly).sub(
		attr("resourceType", typeString, "Name of the resource type.").caseExact().mutability(mutReadOnly),
		attr("created", typeDateTime, "When the resource was added.").mutability(mutReadOnly),
		attr("lastModified", typeDateTime, "When the resource was last changed.").mutability(mutReadOnly),
		attr("location", typeReference, "URI of the resource.").caseExact().mutability(mutReadOnly).refs("uri"),
		attr("version", typeString, "Version of the resource, the ETag.").caseExact().mutability(mutReadOnly),
	),
}

var userSchema = &schema{
	ID:          schemaUser,
	Name:        "User",
	Description: "User Account",
	Attributes: []*attribute{
		attr("userName", typeString, "Unique identifier of the user, typically what the user signs in with. Unique per tenant, compared case-insensitively.").
			required().unique("server"),
		attr("name", typeComplex, "The components of the user's real name.").sub(
			attr("formatted", typeString, "The full name, formatted for display."),
			attr("familyName", typeString, "The family name (last name in most Western languages)."),
			attr("givenName", typeString, "The given name (first name in most Western languages)."),
			attr("middleName", typeString, "The middle name(s)."),
			attr("honorificPrefix", typeString, "The honorific prefix(es), e.g. 'Ms.'."),
			attr("honorificSuffix", typeString, "The honorific suffix(es), e.g. 'III'."),
		),
		attr("displayName", typeString, "The name of the user, suitable for display."),
		attr("nickName", typeString, "The casual way to address the user."),
		attr("profileUrl", typeReference, "A URI of the user's online profile.").refs("external"),
		attr("title", typeString, "The user's title, such as 'Vice President'."),
		attr("userType", typeString, "The relationship between the organization and the user, e.g. 'Employee'."),
		attr("preferredLanguage", typeString, "The user's preferred written or spoken language."),
		attr("locale", typeString, "The user's default location for localizing, e.g. 'en-US'."),
		attr("timezone", typeString, "The user's time zone in IANA format, e.g. 'Europe/Paris'."),
		attr("active", typeBoolean, "Whether the user may sign in. Setting it to false ends every session of the user."),
		attr("password", typeString, "The user's password. Accepted and discarded: the gateway neither stores nor returns it.").
			mutability(mutWriteOnly).returned(retNever),
		multiValuedComplex("emails", "Email addresses of the user.", typeString, "work", "home", "other"),
		multiValuedComplex("phoneNumbers", "Phone numbers of the user.", typeString, "work", "home", "mobile", "fax", "pager", "other"),
		multiValuedComplex("ims", "Instant messaging addresses of the user.", typeString, "aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
		multiValuedComplex("photos", "URLs of images of the user.", typeReference, "photo", "thumbnail"),
		attr("addresses", typeComplex, "Physical mailing addresses of the user.").multi().sub(
			attr("formatted", typeString, "The full mailing address, formatted for display."),
			attr("streetAddress", typeString, "The full street address."),
			attr("locality", typeString, "The city or locality."),
			attr("region", typeString, "The state or region."),
			attr("postalCode", typeString, "The zip code or postal code."),
			attr("country", typeString, "The country name (ISO 3166-1 alpha-2)."),
			attr("type", typeString, "A label indicating the function of the address.").canonical("work", "home", "other"),
			attr("primary", typeBoolean, "Whether this is the preferred address."),
		),
		attr("groups", typeComplex, "The groups the user is a direct member of. Read-only: managed through the Groups resource.").
			multi().mutability(mutReadOnly).sub(
			attr("value", typeString, "The id of the group.").mutability(mutReadOnly),
			attr("$ref", typeReference, "The URI of the group.").mutability(mutReadOnly).refs("Group"),
			attr("display", typeString, "The displayName of the group.").mutability(mutReadOnly),
			attr("type", typeString, "How the user is a member: 'direct'.").mutability(mutReadOnly).canonical("direct", "indirect"),
		),
		multiValuedComplex("entitlements", "Entitlements of the user.", typeString),
		multiValuedComplex("roles", "Roles of the user.", typeString),
		multiValuedComplex("x509Certificates", "X.509 certificates of the user.", typeBinary),
	},
}

var groupSchema = &schema{
	ID:          schemaGroup,
	Name:        "Group",
	Description: "Group",
	Attributes: []*attribute{
		attr("displayName", typeString, "A human-readable name of the group.").required(),
		attr("members", typeComplex, "The members of the group.").multi().sub(
			attr("value", typeString, "The id of the member, a User or a Group.").caseExact().mutability(mutImmutable),
			attr("$ref", typeReference, "The URI of the member.").mutability(mutImmutable).refs("User", "Group"),
			attr("type", typeString, "The type of the member.").mutability(mutImmutable).canonical("User", "Group"),
			attr("display", typeString, "The userName or displayName of the member.").mutability(mutReadOnly),
		),
	},
}

var enterpriseUserSchema = &schema{
	ID:          schemaEnterpriseUser,
	Name:        "EnterpriseUser",
	Description: "Enterprise User",
	Attributes: []*attribute{
		attr("employeeNumber", typeString, "Identifier of the user within the organization."),
		attr("costCenter", typeString, "Name of a cost center."),
		attr("organization", typeString, "Name of an organization."),
		attr("division", typeString, "Name of a division."),
		attr("department", typeString, "Name of a department."),
		attr("manager", typeComplex, "The user's manager.").sub(
			attr("value", typeString, "The id of the manager's User resource.").caseExact(),
			attr("$ref", typeReference, "The URI of the manager's User resource.").refs("User"),
			attr("displayName", typeString, "The displayName of the manager.").mutability(mutReadOnly),
		),
	},
}

// resourceType is one SCIM resource type (RFC 7643 §6).
type resourceType struct {
	Name        string
	Endpoint    string
	Description string
	Schema      *schema
	Extensions  []*schema
	// keyOrder is the order attributes are written in responses.
	keyOrder []string
}

var userResource = newResourceType("User", "/Users", "User Account", userSchema, enterpriseUserSchema)
var groupResource = newResourceType("Group", "/Groups", "Group", groupSchema)

var resourceTypes = []*resourceType{userResource, groupResource}

// allSchemas are the schemas served on /Schemas.
var allSchemas = []*schema{userSchema, groupSchema, enterpriseUserSchema}

func newResourceType(name, endpoint, description string, core *schema, extensions ...*schema) *resourceType {
	rt := &resourceType{Name: name, Endpoint: endpoint, Description: description, Schema: core, Extensions: extensions}
	rt.keyOrder = append(rt.keyOrder, "schemas", "id", "externalId")
	for _, a := range core.Attributes {
		rt.keyOrder = append(rt.keyOrder, a.Name)
	}
	return rt
}

// topAttr finds a top-level core or common attribute by name.
func (rt *resourceType) topAttr(name string) *attribute {
	if a := findAttr(commonAttributes, name); a != nil {
		return a
	}
	return findAttr(rt.Schema.Attributes, name)
}

// extension finds an extension schema of rt by URN, case-insensitively.
func (rt *resourceType) extension(urn string) *schema {
	for _, s := range rt.Extensions {
		if strings.EqualFold(s.ID, urn) {
			return s
		}
	}
	return nil
}

// isCoreURN says whether urn names rt's core schema.
func (rt *resourceType) isCoreURN(urn string) bool { return strings.EqualFold(rt.Schema.ID, urn) }

// isURNKey says whether a JSON key is a schema URN (an extension container
// or a URN-qualified attribute) rather than a plain attribute name.
func isURNKey(key string) bool {
	return len(key) > 4 && strings.EqualFold(key[:4], "urn:")
}
