package fakeentra

// Stable identifiers of the demo tenant, so that documentation and scripts
// can name them. They are not secrets: the demo tenant exists only on loopback.
const (
	DemoTenantID         = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
	DemoFrontendClientID = "2d6f1f73-7a8e-4d8e-9c37-6b1a1f0c5e11"
	DemoGatewayClientID  = "5c3b2f0e-91d4-4a57-8f0b-3e2d1c4b5a62"
	DemoOrdersClientID   = "a1b2c3d4-0001-4e5f-8a9b-0c1d2e3f4a01"
	DemoHRClientID       = "a1b2c3d4-0002-4e5f-8a9b-0c1d2e3f4a02"
	DemoInventoryID      = "a1b2c3d4-0003-4e5f-8a9b-0c1d2e3f4a03"
	DemoDaemonClientID   = "a1b2c3d4-0004-4e5f-8a9b-0c1d2e3f4a04"
	DemoAliceObjectID    = "11111111-aaaa-4aaa-8aaa-111111111111"
	DemoBobObjectID      = "22222222-bbbb-4bbb-8bbb-222222222222"
	DemoPassword         = "Passw0rd!demo" //nolint:gosec // a published demo password, loopback only
	// DemoGatewaySecret is the gateway app's client secret, besides its
	// certificate: for the tests of secret credentials and for peers that
	// cannot use a certificate (bench: oauth2-proxy). Loopback only.
	DemoGatewaySecret = "demo-gateway-secret" //nolint:gosec // a published demo secret, loopback only
	// DemoDaemonSecret is the client secret of "daemon", a service that
	// calls the gateway with its own app-only token. Loopback only.
	DemoDaemonSecret = "demo-daemon-secret" //nolint:gosec // a published demo secret, loopback only
	// DemoGatewayMIClientID and DemoGatewayMIObjectID are the client and
	// object (principal) IDs of "gateway-identity", the user-assigned
	// managed identity the gateway app trusts as a federated credential.
	DemoGatewayMIClientID = "a1b2c3d4-0005-4e5f-8a9b-0c1d2e3f4a05"
	DemoGatewayMIObjectID = "a1b2c3d4-0006-4e5f-8a9b-0c1d2e3f4a06"
	// DemoServiceAccount is the Kubernetes service account, of the local
	// cluster issuer, the gateway app trusts: namespace obo-gateway, name
	// obo-gateway.
	DemoServiceAccount = "system:serviceaccount:obo-gateway:obo-gateway"
)

// DemoTenant returns the tenant used when no tenant file is given:
//   - "frontend": a public client (a SPA) allowed to ask for the gateway's
//     access_as_user, with the SPA redirect URIs http://localhost:3000/ (any
//     port: Entra ignores a localhost URI's port) and http://127.0.0.1:3000/;
//   - "gateway": the middle tier, confidential, with a certificate generated at
//     start-up, exposing access_as_user, with delegated permissions on the APIs;
//     its manifest leaves accessTokenAcceptedVersion null, as a new
//     registration does, so frontends get v1 tokens for it (aud
//     api://obo-gateway, iss on the STS host);
//   - "orders-api" (v2 tokens), "hr-api" (v1 tokens, MFA required for alice)
//     and "inventory-api" (v2; alice has not consented to it): downstream APIs;
//   - the authentication context "c1" (require MFA), which an API can ask
//     for in a claims challenge;
//   - "daemon": a confidential client (secret DemoDaemonSecret) holding the
//     gateway's application permission Gateway.Call, for app-only calls;
//   - users alice and bob, password DemoPassword; alice is assigned the
//     gateway's app role Gateway.Admin, bob none;
//   - "gateway-identity", a user-assigned managed identity; the gateway app
//     has two federated credentials, so that it can run without its
//     certificate: the local cluster issuer's service account
//     DemoServiceAccount ("aks-obo-gateway") and gateway-identity's
//     tokens ("gateway-identity").
func DemoTenant() *Tenant {
	return &Tenant{
		TenantID:     DemoTenantID,
		Domain:       "contoso.test",
		AuthContexts: []AuthContext{{ID: "c1", RequireMFA: true}},
		ManagedIdentities: []*ManagedIdentity{
			{Name: "gateway-identity", ClientID: DemoGatewayMIClientID, ObjectID: DemoGatewayMIObjectID},
		},
		Apps: []*App{
			{
				Name: "frontend", ClientID: DemoFrontendClientID, PublicClient: true,
				Permissions: []Permission{{Resource: "gateway", Scopes: []string{"access_as_user"}}},
				// The sample SPA's origins. Entra ignores the port of a
				// localhost redirect URI: any http://localhost:<port>/ matches.
				RedirectURIs: RedirectURIs{SPA: []string{"http://localhost:3000/", "http://127.0.0.1:3000/"}},
			},
			{
				Name: "gateway", ClientID: DemoGatewayClientID,
				IdentifierURIs:      []string{"api://obo-gateway"},
				Scopes:              []string{"access_as_user"},
				AppRoles:            []string{"Gateway.Call", "Gateway.Admin"},
				GenerateCertificate: true,
				Secrets:             []string{DemoGatewaySecret},
				FederatedCredentials: []FederatedCredential{
					{Name: "aks-obo-gateway", ClusterIssuer: LocalClusterIssuer, Subject: DemoServiceAccount},
					{Name: "gateway-identity", ManagedIdentity: "gateway-identity"},
				},
				Permissions: []Permission{
					{Resource: "orders-api", Scopes: []string{"Orders.Read", "Orders.Write"}, Roles: []string{"Orders.Read.All"}},
					{Resource: "hr-api", Scopes: []string{"HR.Read"}},
					{Resource: "inventory-api", Scopes: []string{"Inventory.Read"}},
				},
			},
			{
				Name: "orders-api", ClientID: DemoOrdersClientID,
				IdentifierURIs:     []string{"api://orders-api"},
				Scopes:             []string{"Orders.Read", "Orders.Write"},
				AppRoles:           []string{"Orders.Read.All"},
				AccessTokenVersion: 2,
			},
			{
				Name: "hr-api", ClientID: DemoHRClientID,
				IdentifierURIs:     []string{"api://hr-api"},
				Scopes:             []string{"HR.Read"},
				AccessTokenVersion: 1,
			},
			{
				Name: "inventory-api", ClientID: DemoInventoryID,
				IdentifierURIs:     []string{"api://inventory-api"},
				Scopes:             []string{"Inventory.Read"},
				AccessTokenVersion: 2,
			},
			{
				Name: "daemon", ClientID: DemoDaemonClientID,
				Secrets:     []string{DemoDaemonSecret},
				Permissions: []Permission{{Resource: "gateway", Roles: []string{"Gateway.Call"}}},
			},
		},
		Users: []*User{
			{
				Username: "alice@contoso.test", Password: DemoPassword, ObjectID: DemoAliceObjectID,
				DisplayName: "Alice Example",
				MFARequired: []string{"hr-api"},
				NoConsent:   []string{"inventory-api"},
				AppRoles:    []RoleAssignment{{Resource: "gateway", Roles: []string{"Gateway.Admin"}}},
			},
			{
				Username: "bob@contoso.test", Password: DemoPassword, ObjectID: DemoBobObjectID,
				DisplayName: "Bob Example",
				NoConsent:   []string{"inventory-api"},
			},
		},
	}
}
