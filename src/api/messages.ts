/**
 * The one catalogue of message codes for all of Trellis.
 *
 * `TRL0nnn` mirrors the Istio code of the same number (`TRL0106` ↔ `IST0106`);
 * `TRL1nnn` are Trellis's own. A code is permanent: it is never reused for
 * another meaning, and a retired code stays in the table marked `retired`.
 * Templates use `{name}` placeholders filled from a message's `args`.
 */
export type Level = 'error' | 'warning' | 'info';

export interface MessageType {
  readonly code: string;
  readonly name: string;
  readonly level: Level;
  /** A sentence with `{placeholders}`; the arguments come with each message. */
  readonly template: string;
  /** One line for the docs: what the code means and what to do about it. */
  readonly docs: string;
}

const table = {
  SchemaValidationError: {
    code: 'TRL0106', level: 'error',
    template: '{detail}',
    docs: 'A field breaks a rule of its kind: wrong type, value out of range, missing required field, bad enum, malformed duration or regex, or fields that may not be set together. Fix the field named.',
  },
  Deprecated: {
    code: 'TRL0002', level: 'warning',
    template: '{field} is deprecated: {instead}',
    docs: 'The configuration uses a field Istio has deprecated; it still works in Trellis, but move to the replacement named in the message.',
  },
  ReferencedResourceNotFound: {
    code: 'TRL0101', level: 'error',
    template: '{what} {name} does not exist{hint}',
    docs: 'A field names another resource (a destination host, a subset, a gateway, a namespace, a selected workload) that the configuration and the registry do not have. Traffic that depends on it fails; fix the reference or add the resource.',
  },
  ConflictingMeshGatewayVirtualServiceHosts: {
    code: 'TRL0109', level: 'error',
    template: 'conflicts with {others} on {host}: all are bound to the mesh and some namespace sees them together, but a sidecar uses one VirtualService per host (the one loaded first), so the others\' routes for it are lost; merge them into one VirtualService, or narrow exportTo so no namespace sees two',
    docs: 'Two or more VirtualServices bound to the mesh claim the same host (or overlapping wildcard hosts) where a namespace sees both; sidecars apply only one of them, so the other one\'s routes are silently lost.',
  },
  ConflictingSidecarWorkloadSelectors: {
    code: 'TRL0110', level: 'error',
    template: 'selects workload {workload}, which {others} selects too; a workload takes one Sidecar: make the selectors disjoint',
    docs: 'Two Sidecar resources of one namespace select the same workload; which one applies is undefined.',
  },
  MultipleSidecarsWithoutWorkloadSelectors: {
    code: 'TRL0111', level: 'error',
    template: 'namespace {namespace} has more than one Sidecar without a workloadSelector ({others}); only one namespace-wide Sidecar applies: merge them',
    docs: 'A namespace may have one Sidecar without a workloadSelector; with several, which one applies is undefined.',
  },
  InvalidTelemetryProvider: {
    code: 'TRL0157', level: 'warning',
    template: 'accessLogging[{index}] names no provider and MeshConfig has no defaultProviders.accessLogging: the entry is ignored; name a provider (envoy, or a MeshConfig extension provider)',
    docs: 'A Telemetry accessLogging entry that names no provider, in a mesh whose MeshConfig has no default access log provider, configures nothing (Istio ignores it too).',
  },
  ConflictingTelemetryWorkloadSelectors: {
    code: 'TRL0159', level: 'error',
    template: 'selects workload {workload}, which {others} selects too; a workload takes one Telemetry: make the selectors disjoint',
    docs: 'Two Telemetry resources with selectors pick the same workload; Trellis takes the first by namespace and name, Istio calls it invalid.',
  },
  MultipleTelemetriesWithoutWorkloadSelectors: {
    code: 'TRL0160', level: 'error',
    template: 'namespace {namespace} has more than one Telemetry without a selector ({others}); only one namespace-wide Telemetry applies: merge them',
    docs: 'A namespace (the root namespace included) may have one Telemetry without a selector; with several, Trellis takes the first by name and Istio calls it invalid.',
  },
  VirtualServiceDestinationPortSelectorRequired: {
    code: 'TRL0112', level: 'error',
    template: 'destination {host} has more than one port ({ports}) and the route does not say which: the proxy then uses the port the request came in on, which the destination may not have; set destination.port.number',
    docs: 'A route to a service with several ports should name the port; without it the proxy sends to the port the request arrived on, which breaks as soon as the ports differ (a gateway on 80 in front of a service on 9080).',
  },
  PortNameIsNotUnderNamingConvention: {
    code: 'TRL0118', level: 'info',
    template: 'port {port} of {service} {naming}: Trellis carries it as {assumed}; name it <protocol>[-suffix] (http-web, grpc-api, tcp-db) or set appProtocol',
    docs: 'A Service port says its protocol by appProtocol or a name prefix (http, http2, grpc, tcp, tls, …); without either Istio sniffs it and Trellis carries it as HTTP/1.1. Name the port or set appProtocol.',
  },
  NoMatchingWorkloadsFound: {
    code: 'TRL0127', level: 'warning',
    template: 'no workload {scope} {labels}: the policy applies to nothing; fix the selector or the namespace, or remove the policy',
    docs: 'A policy\'s selector (or its namespace) matches no workload of the registry, so it has no effect. A typo in the labels or the namespace, or workloads not declared yet.',
  },
  NoServerCertificateVerificationDestinationLevel: {
    code: 'TRL0128', level: 'warning',
    template: 'tls mode {mode} to {host} sets no caCertificates: {effect}; set caCertificates to the file of the CA that signs the server\'s certificate',
    docs: 'A DestinationRule originates TLS (SIMPLE or MUTUAL) without caCertificates: Trellis then trusts any certificate a public root CA issued for the name (none at all with insecureSkipVerify). Pin the server\'s CA with caCertificates.',
  },
  NoServerCertificateVerificationPortLevel: {
    code: 'TRL0129', level: 'warning',
    template: 'tls mode {mode} to {host} port {port} sets no caCertificates: {effect}; set caCertificates to the file of the CA that signs the server\'s certificate',
    docs: 'As TRL0128, for one port\'s TLS settings (portLevelSettings[].tls).',
  },
  VirtualServiceUnreachableRule: {
    code: 'TRL0130', level: 'warning',
    template: '{rule} never matches: {reason}',
    docs: 'A VirtualService rule comes after a rule that matches everything it matches (the same match, or no match at all), so it is never used. Reorder or remove it.',
  },
  VirtualServiceIneffectiveMatch: {
    code: 'TRL0131', level: 'info',
    template: '{match} of {rule} never takes effect: {earlier} comes before it and takes every request it matches; remove it, or reorder the matches',
    docs: 'A match of a rule is covered by an earlier match (the same conditions, or wider ones such as a shorter URI prefix); the rule may still be reached through its other matches, but this one never decides anything.',
  },
  VirtualServiceHostNotFoundInGateway: {
    code: 'TRL0132', level: 'warning',
    template: 'none of the hosts {hosts} is admitted by a server of gateway {gateway}: the gateway never routes to this VirtualService; add the host to the Gateway\'s servers[].hosts (namespace/host allowed) or fix spec.hosts',
    docs: 'A VirtualService bound to a Gateway must share a host with one of the Gateway\'s servers (namespace/host syntax honoured); otherwise its routes never apply at that gateway.',
  },
  ServiceEntryAddressesRequired: {
    code: 'TRL0134', level: 'warning',
    template: 'port {port} of {host} {protocol} and the ServiceEntry has no addresses: TCP carries no host name, so a proxy that captures connections by address cannot route it (Trellis reaches it only by name, through a CONNECT tunnel or a per-upstream port); set spec.addresses, or give the port an HTTP or TLS protocol',
    docs: 'TCP connections are told apart by destination address only; a ServiceEntry with a TCP (or protocol-less) port needs addresses (virtual IPs), unless DNS capture with auto-allocation gives it some.',
  },
  GatewayDuplicateCertificate: {
    code: 'TRL0138', level: 'warning',
    template: 'uses the same certificate as {others} on the same gateway workloads: HTTP/2 clients that reuse a connection across hosts can get 404; serve those hosts from one server or use distinct certificates',
    docs: 'Two Gateways on the same workloads present the same certificate; browsers reuse an HTTP/2 connection for every host the certificate covers, and the second Gateway\'s hosts then answer 404.',
  },
  IngressRouteRulesNotAffected: {
    code: 'TRL0140', level: 'warning',
    template: 'routes gateway traffic to {host} without a subset, while {other} splits {host} by subset for sidecars: the split does not apply to requests from the gateway',
    docs: 'A VirtualService bound to a gateway sends traffic straight to a host whose mesh VirtualService splits it by subset; gateway traffic bypasses that split. Add the subsets to the gateway route as well.',
  },
  ConflictingGateways: {
    code: 'TRL0145', level: 'error',
    template: 'port {port} for hosts {hosts} on the workloads {selector} is also served by {others}: one of the servers is ignored; serve these hosts from one Gateway or use distinct ports',
    docs: 'Two Gateways select the same workloads (equal selectors, or selectors that pick a common workload) and serve overlapping hosts on the same port; only one server can own a host and port.',
  },
  JwtClaimBasedRoutingWithoutRequestAuthN: {
    code: 'TRL0149', level: 'error',
    template: 'routes on the JWT claim {claim} at gateway {gateway}, but no RequestAuthentication applies to its workloads {workloads}: no token is validated there, so the claim is never known and the match never holds; add a RequestAuthentication that selects them',
    docs: 'Routing on @request.auth.claims needs a RequestAuthentication that validates the token on the same workloads (the gateway); without it the match never succeeds.',
  },
  ExternalNameServiceTypeInvalidPortName: {
    code: 'TRL0150', level: 'warning',
    template: 'port {port} of ExternalName service {service} {naming}: {effect}; name it with an HTTP or TLS protocol (http-…, https-…, tls-…)',
    docs: 'An ExternalName service port that is TCP (or has no protocol) is opaque TCP to the external name; a proxy that captures by address sends every connection on that port there. Name it with an HTTP or TLS protocol.',
  },
  GatewayPortNotDefinedOnService: {
    code: 'TRL0162', level: 'warning',
    template: 'port {port} is not exposed by the services in front of the workloads {selector} ({services}): no client reaches this server; add the port to a Service or use a port the Service exposes',
    docs: 'A Gateway server listens on a port that no Kubernetes Service fronting the gateway workloads exposes, as its port or its targetPort; gateway workloads declared without a Service (WorkloadEntry, App) are reached directly and not checked.',
  },
  ReferencedInternalGateway: {
    code: 'TRL0165', level: 'warning',
    template: 'gateway {gateway} is a name Istio generates for a Kubernetes Gateway API gateway, not a Gateway of this configuration; bind to a networking.istio.io Gateway by its own name',
    docs: 'A VirtualService names a Gateway that Istio generates from a Kubernetes Gateway API gateway (the name contains istio-autogenerated-k8s-gateway); such names are internal and may change, and Trellis has no such Gateways.',
  },
  IneffectivePolicy: {
    code: 'TRL0167', level: 'warning',
    template: 'the policy has no effect: {reason}',
    docs: 'A policy is written so that it never changes anything (it selects workloads it cannot apply to, or repeats what another policy already decides).',
  },
  DestinationRuleSubsetNotSelectPods: {
    code: 'TRL0173', level: 'error',
    template: 'subset {subset} ({labels}) selects no endpoint of {host}: requests routed to it fail with 503 (no healthy upstream); fix the labels or declare the workloads that carry them',
    docs: 'A DestinationRule subset\'s labels match no endpoint (or selected workload) of its host. A typo in the labels, or workloads not declared yet.',
  },
  UnknownDestinationRuleHost: {
    code: 'TRL0174', level: 'warning',
    template: 'host {host} matches no service visible from namespace {namespace} (or the namespaces the rule is exported to): the rule applies to nothing; fix the host (a short name resolves in the rule\'s namespace) or declare the Service or ServiceEntry',
    docs: 'A DestinationRule\'s host resolves to no Service or ServiceEntry that a namespace the rule applies in can see, so its policies never apply.',
  },
  ConflictingServiceEntryProtocol: {
    code: 'TRL0177', level: 'warning',
    template: 'host {host} port {port} is {protocol} here but {otherProtocol} in {other}, both visible in {where}: {effect}; give the port one protocol, or declare the host once',
    docs: 'Two ServiceEntries visible in the same namespaces declare one host and port with different protocols; only one definition of the host is in force, so one of the protocols is silently not used.',
  },
  YamlSyntaxError: {
    code: 'TRL1001', level: 'error',
    template: 'YAML syntax error: {detail}',
    docs: 'The file is not valid YAML; nothing in the document was read. Fix the syntax at the position given.',
  },
  UnknownField: {
    code: 'TRL1002', level: 'error',
    template: 'unknown field "{field}"{hint}',
    docs: 'The kind has no such field. A typo, or a field of another version of the API; it is an error so that no setting is silently dropped.',
  },
  UnsupportedKind: {
    code: 'TRL1003', level: 'error',
    template: '{kind} is not supported by Trellis: {instead}',
    docs: 'Trellis rejects kinds whose semantics it does not implement instead of ignoring them. The message says what to use instead.',
  },
  UnknownKind: {
    code: 'TRL1004', level: 'error',
    template: 'unknown kind "{kind}" in apiVersion "{apiVersion}"{hint}',
    docs: 'Neither Istio, Kubernetes (as registry data) nor trellis.dev defines this apiVersion/kind pair.',
  },
  FieldNotEnforced: {
    code: 'TRL1005', level: 'warning',
    template: 'field "{field}" is accepted but not yet enforced by Trellis',
    docs: 'The field is valid Istio configuration, Trellis keeps it, but the data plane does not act on it yet. Behaviour differs from Istio until it does.',
  },
  DuplicateResource: {
    code: 'TRL1006', level: 'error',
    template: '{resource} is defined twice; first at {first}',
    docs: 'Two documents declare the same kind, namespace and name. The later one is ignored; remove or rename one.',
  },
  NotPortable: {
    code: 'TRL1007', level: 'info',
    template: 'field "{field}" is a Trellis extension and is not understood by Istio',
    docs: 'The configuration uses a Trellis-only extension (such as AuthorizationPolicy source.labels); Istio would reject it.',
  },
  FileNotReadable: {
    code: 'TRL1008', level: 'error',
    template: 'cannot read {path}: {detail}',
    docs: 'A path given on the command line or found in a directory could not be read.',
  },
  WorkloadNotFound: {
    code: 'TRL1009', level: 'error',
    template: 'no workload "{name}"{where}; known workloads: {known}',
    docs: 'A command named a workload (a Deployment, Pod, WorkloadEntry or App service) that the configuration does not declare.',
  },
  InvalidResourceHeader: {
    code: 'TRL1010', level: 'error',
    template: '{detail}',
    docs: 'A document lacks apiVersion, kind or metadata.name, or they are not strings; it cannot be identified as a resource.',
  },
  ValueNotEnforced: {
    code: 'TRL1011', level: 'warning',
    template: 'value {value} of "{field}" is accepted but not yet enforced: {detail}',
    docs: 'The field is enforced, but this one value of it is not acted on yet: Trellis keeps it, and the message says what happens instead. Behaviour differs from Istio for this value until it is supported.',
  },
  DuplicateServiceHost: {
    code: 'TRL1101', level: 'warning',
    template: 'service host {host} is defined by {first} and again by {resource}; the registry keeps the first and ignores this one',
    docs: 'Two resources (or two sources) declare the same hostname. Nothing is merged: the first wins. Rename one, or merge them into one resource.',
  },
  UnresolvedTargetPort: {
    code: 'TRL1102', level: 'warning',
    template: 'port {port} of {service} targets the named port "{targetPort}", which workload {workload} does not declare; the workload gets no endpoint on this port',
    docs: 'A Service targetPort names a container port the selected workload does not have. Name the container port, or use a number.',
  },
  DuplicateWorkload: {
    code: 'TRL1103', level: 'warning',
    template: 'workload {workload} is declared by {first} and again by {resource}; the registry keeps the first',
    docs: 'Two resources declare a workload of the same name in the same namespace (a Pod and a Deployment, an App workload and a WorkloadEntry). Rename one.',
  },
  UnknownInstance: {
    code: 'TRL1201', level: 'error',
    template: 'instance "{instance}" is not declared by the configuration{hint}',
    docs: 'A proxy registered for an instance that no App workload, Pod or WorkloadEntry declares. The control plane refuses it; declare the instance, or start the proxy with the right --instance.',
  },
  ClaimMismatch: {
    code: 'TRL1202', level: 'error',
    template: 'instance "{instance}" claims {claim} "{claimed}", but the configuration says "{configured}"',
    docs: 'What an instance is (labels, service account, identity) comes from the configuration, never from the proxy. A proxy that claims otherwise is refused.',
  },
  SnapshotRejected: {
    code: 'TRL1203', level: 'error',
    template: 'proxy {instance} rejected snapshot {version}: {reason}',
    docs: 'A proxy could not apply a snapshot (NACK) and keeps serving the previous one. The reason names what it could not build.',
  },
  DuplicateInstance: {
    code: 'TRL1204', level: 'error',
    template: 'instance "{instance}" registered again from another connection ({listeners}); this connection is closed',
    docs: 'Two proxies registered for the same instance, or a proxy reconnected before the control plane noticed its old connection was gone. The newest registration wins; start each proxy with its own --instance.',
  },
  InvalidHello: {
    code: 'TRL1205', level: 'error',
    template: 'the stream must begin with a hello message naming an instance: {detail}',
    docs: 'A client opened the control-plane stream without a valid hello (wrong first message, missing instance or listeners). Use `trellis proxy`, or a client that speaks src/protocol/stream.ts.',
  },
  InstanceWithdrawn: {
    code: 'TRL1206', level: 'warning',
    template: 'instance "{instance}" is connected but the configuration no longer declares it; its proxy keeps its last snapshot and gets no pushes',
    docs: 'A configuration edit removed (or scaled away) an instance whose proxy is still connected. Stop the proxy, or declare the instance again; it receives pushes again when it is declared.',
  },
  PeerIdentityMismatch: {
    code: 'TRL1207', level: 'error',
    template: 'instance "{instance}" connected with the certificate of {presented}, but the configuration gives it the identity {configured}',
    docs: 'The control-plane stream is mTLS: the certificate a proxy presents must carry the identity of the instance its hello names. A proxy cannot register as another workload with its own certificate.',
  },
  CertificateRefused: {
    code: 'TRL1208', level: 'error',
    template: 'no certificate for instance "{instance}": {reason}',
    docs: 'The CA signs a certificate only for a caller that proves which instance it is: with a valid one-time join token minted for that instance (`trellis up` mints them; in hosts mode `trellis token create`), or with the certificate it already holds. Replayed, expired and mismatched tokens are refused.',
  },
  JwksUnavailable: {
    code: 'TRL1301', level: 'warning',
    template: 'no keys for issuer {issuer} from {uri}: {detail}; requests with a token of this issuer are refused (401) until the keys are fetched',
    docs: 'The control plane has not fetched the JWKS of a RequestAuthentication jwksUri (not yet, or the fetch failed; it keeps retrying). Tokens of that issuer get 401, as in Istio; check that the control plane can reach the URI, or give the keys inline in jwks.',
  },
  JwksUnusable: {
    code: 'TRL1302', level: 'warning',
    template: 'inline jwks of issuer {issuer}: {detail}',
    docs: 'An inline jwks is not a usable JSON Web Key Set (not JSON, no "keys" list, no key with a "kty"), or some of its entries are not keys and are ignored. Tokens that only those keys would verify get 401; fix the key set.',
  },
  JwksSourceMissing: {
    code: 'TRL1303', level: 'warning',
    template: 'issuer {issuer} has no key source: Trellis does not discover keys through OpenID Connect; give the rule a jwksUri or an inline jwks. Until then its tokens are refused (401)',
    docs: 'A JWT rule names an issuer but neither jwksUri nor jwks. Istio would find the keys through OpenID Connect discovery, which Trellis does not do, so every token of that issuer gets 401. Set jwksUri (the control plane fetches it) or jwks.',
  },
  CallerIdentityShared: {
    code: 'TRL1304', level: 'warning',
    template: 'caller group {labels} shares identities with workloads outside it: {shared}; {effect}; give the group\'s workloads a service account of their own',
    docs: 'An AuthorizationPolicy caller group (source.labels) names workloads whose identity other workloads use too, so a certificate cannot tell them apart. Trellis fails closed: where the group grants access the shared identities are left out, where it restricts they are counted in. Give the group its own service account.',
  },
  CallerGroupEmpty: {
    code: 'TRL1305', level: 'warning',
    template: 'no workload carries the labels {labels}: the caller group matches no caller',
    docs: 'An AuthorizationPolicy caller group (source.labels or source.notLabels) selects no workload of the registry, so it matches nobody. A typo in the labels, or workloads not declared yet.',
  },
  CustomActionNotSupported: {
    code: 'TRL1306', level: 'warning',
    template: 'Trellis has no external authorizer for provider "{provider}": the requests this CUSTOM policy matches are denied',
    docs: 'Trellis does not call external authorizers (Istio\'s CUSTOM action with an extension provider). It fails closed: what a CUSTOM policy matches is denied (403). Express the decision with ALLOW and DENY policies instead.',
  },
  GatewayWithoutSelector: {
    code: 'TRL1430', level: 'warning',
    template: 'the Gateway has no selector: Trellis applies a Gateway only to the workloads its selector picks, so no proxy serves it; add spec.selector (such as istio: ingressgateway)',
    docs: 'Istio applies a Gateway without a selector to every gateway workload; Trellis decides which workloads are gateways by Gateway selectors and applies such a Gateway to none. Name the gateway workloads in spec.selector.',
  },
  VirtualServiceHostNotAService: {
    code: 'TRL1411', level: 'warning',
    template: 'host {host} is not the host of a service: {why}; sidecars apply a VirtualService only to hosts of services, so these rules shape no traffic there. Add a ServiceEntry for {host}, or bind the VirtualService to a gateway',
    docs: 'Trellis builds a sidecar\'s routes from the registry\'s services and gives each the VirtualService for its hostname; a mesh-bound VirtualService host that is no service\'s hostname (or a wildcard that covers none) is never applied, where Istio would make a virtual host for it. Declare the host with a ServiceEntry, or bind the VirtualService to a gateway.',
  },
  JwtClaimRouteNotEnforced: {
    code: 'TRL1410', level: 'warning',
    template: 'matches on the JWT claim {claim} in a rule that applies to sidecars (mesh), which never know claims: a sidecar routes its app\'s calls before any token is validated (RequestAuthentication validates at the destination\'s inbound), so {effect}; route on claims at a gateway (bind the rule to it with gateways), or decide at the destination with an AuthorizationPolicy on request.auth.claims',
    docs: 'Route matches on @request.auth.claims.* are evaluated where the token is validated before routing: at gateways with a RequestAuthentication (as in Istio). Sidecars route outbound calls, and tokens are validated at the destination\'s inbound, so in a rule that applies to the mesh a claim match never holds and a claim in withoutHeaders always holds. Bind claim routing to a gateway, or decide with an AuthorizationPolicy on request.auth.claims at the destination.',
  },
  AnalyzerFailed: {
    code: 'TRL1401', level: 'error',
    template: 'analyzer {analyzer} failed: {detail}; this is a Trellis bug, please report it with the configuration',
    docs: 'An analyzer threw instead of reporting; its checks did not run. The other analyzers still ran.',
  },
  ClientTlsRefusedByStrictMtls: {
    code: 'TRL1440', level: 'error',
    template: '{client} uses tls mode {mode} for {host} port {port}, but {policy} makes {workloads} accept mesh mTLS only (STRICT): every such call is refused; {fix}',
    docs: 'A caller sends plaintext (DISABLE, or no auto mTLS) or TLS with certificates of its own (SIMPLE, MUTUAL) to workloads whose PeerAuthentication is STRICT, which accept only peers with a mesh certificate. Use tls mode ISTIO_MUTUAL for the host (or leave the mode out and keep MeshConfig enableAutoMtls on), or make the PeerAuthentication PERMISSIVE for that port.',
  },
  MtlsRefusedByDisabledMtls: {
    code: 'TRL1441', level: 'error',
    template: '{client} sends mesh mTLS (ISTIO_MUTUAL) to {host} port {port}, but {policy} sets DISABLE on {workloads}, which then take plaintext only: every such call is refused; {fix}',
    docs: 'A caller originates mesh mTLS (an explicit ISTIO_MUTUAL, or auto mTLS to a service whose workloads are not all DISABLE) to workloads whose PeerAuthentication is DISABLE. Set tls mode DISABLE for that host and port in a DestinationRule, or make the PeerAuthentication PERMISSIVE.',
  },
  AllowRuleEmptyAmongRules: {
    code: 'TRL1442', level: 'warning',
    template: 'rule {rule} is empty, so it allows every request and {others} of this ALLOW policy never decide anything; remove the empty rule (an indentation slip in the YAML?), or, if every request should be allowed, keep it alone',
    docs: 'An ALLOW policy has an empty rule ({}) next to other rules. An empty rule matches every request, caller and port, so the policy allows everything and its other rules are dead. Remove the empty rule; an intended allow-all is written as a policy whose only rule is {}.',
  },
  AllowRuleOnlyExclusions: {
    code: 'TRL1443', level: 'warning',
    template: 'rule {rule} only excludes ({fields}): it allows every other request, callers without an mTLS identity included; to refuse what it names, write a DENY policy with the positive fields; to admit only some callers or operations, list them (principals, namespaces, paths, …)',
    docs: 'An ALLOW rule whose sources, operations and conditions only say what is not matched (notPrincipals, notNamespaces, notPaths, notValues, …) matches nearly all traffic, plaintext callers included, so the policy restricts almost nothing. A DENY policy is the way to refuse some requests; an ALLOW rule should name who or what it admits.',
  },
  ServiceNotRedundant: {
    code: 'TRL1501', level: 'error',
    template: '{service} has {instances} instance{s} ({detail}); {policy} asks for at least {min}: one failure takes it down; run more replicas (Deployment replicas, App replicas, another WorkloadEntry)',
    docs: 'Compliance, redundancy: a service has fewer instances (registry endpoints: Deployment or App replicas, Pods, WorkloadEntries) than its CompliancePolicy asks for (2 by default), so the failure of one instance or its host is an outage. Run more instances, or state a lower minimum in a CompliancePolicy.',
  },
  ServiceInTooFewZones: {
    code: 'TRL1502', level: 'error',
    template: '{service} runs in {zones} zone{s} ({detail}); {policy} asks for at least {min}, so a zone outage takes it down; place instances in more zones (App placement, WorkloadEntry locality, node topology labels)',
    docs: 'Compliance, high availability: the instances of a service run in fewer distinct zones than its CompliancePolicy asks for (2 by default). Instances whose locality the registry does not know count in no zone. Spread the instances over zones and make their locality known.',
  },
  NoZoneFailover: {
    code: 'TRL1503', level: 'error',
    template: 'callers of {service} in {callers} use {cluster}, which {problem}, so a zone outage is not survived; {fix}',
    docs: 'Compliance, high availability: the DestinationRule callers use for a service does not fail over out of a failed zone. That needs outlier detection (to eject the dead instances) and locality load balancing left on (localityLbSetting.enabled not false); Trellis compiles locality failover only with both, as Istio does. Add outlierDetection to the DestinationRule, or turn the requirement off with highAvailability.requireFailover: false.',
  },
  ZoneNotEjectable: {
    code: 'TRL1504', level: 'warning',
    template: 'callers of {service} in {callers} use {cluster}, whose outlierDetection.maxEjectionPercent {max} lets the proxy eject fewer instances than zone {zone} holds ({inZone} of {total}): after a zone outage part of the traffic still goes to dead instances; set maxEjectionPercent to at least {needed}',
    docs: 'Compliance, high availability: outlier detection ejects a host only while the ejected share of the cluster is below maxEjectionPercent (10 by default), so it cannot eject all the instances of a failed zone, and part of the traffic keeps going there. Raise maxEjectionPercent above the share of the largest zone.',
  },
  ServiceInTooFewRegions: {
    code: 'TRL1505', level: 'error',
    template: '{service} runs in {regions} region{s} ({detail}); {policy} asks for at least {min}, so losing a region takes it down; run instances in another region',
    docs: 'Compliance, disaster recovery: the instances of a service run in fewer distinct regions than its CompliancePolicy asks for. This check is off unless a CompliancePolicy states disasterRecovery. Instances whose region the registry does not know count in no region.',
  },
  TenantReachable: {
    code: 'TRL1506', level: 'error',
    template: '{service} of tenant {tenant} can be called by {callers} of tenant {other} ({how}), and it does not authorize them in particular: {why}; give {workloads} an ALLOW AuthorizationPolicy that names the callers tenant {tenant} admits, or keep the service from the other tenant with exportTo',
    docs: 'Compliance, partitioning: a workload of one tenant can call a service of another tenant, and the service\'s authorization would let any caller in (no ALLOW policy, or one whose rule admits a caller from outside the mesh too), so the tenant never decided to admit it. Decided with the proxies\' authorization engine (src/policy/authorize.ts). Authorize the callers by principal, namespace or label, or narrow the service\'s exportTo.',
  },
  MtlsNotStrict: {
    code: 'TRL1507', level: 'error',
    template: '{workload} accepts plaintext on port {port} (mTLS mode {mode}{origin}); {policy} asks for STRICT mTLS everywhere; {fix}',
    docs: 'Compliance, security: a workload port is PeerAuthentication PERMISSIVE (Trellis\'s and Istio\'s default) or DISABLE, so it takes plaintext from anyone who can reach it, without an identity to authorize. Set a mesh-wide PeerAuthentication in the root namespace with mtls.mode STRICT, and remove the exceptions.',
  },
  NoAllowPolicy: {
    code: 'TRL1508', level: 'error',
    template: '{workload} serves {services} and no ALLOW AuthorizationPolicy selects it, so every caller that reaches it is allowed; {policy} asks for an ALLOW policy on every workload; write one that names its callers',
    docs: 'Compliance, security: no ALLOW AuthorizationPolicy selects a workload that serves a service, so the proxy allows every request (zero trust asks for "deny unless allowed"). Add an ALLOW policy for the workload that names its callers (principals, namespaces, source.labels).',
  },
  AllowPolicyAdmitsAnyone: {
    code: 'TRL1509', level: 'warning',
    template: '{workload} is under an ALLOW policy, but {decision} lets a caller from outside the mesh in ({request}); {policy} asks that every workload authorize its callers; name the callers in the rule\'s from',
    docs: 'Compliance, security: a workload has an ALLOW AuthorizationPolicy, but one of its rules admits any caller (no from, or only exclusions), as the authorization engine decides for a made-up identity that belongs to no workload of the mesh. Name the callers the rule is for.',
  },
  PlaintextEgress: {
    code: 'TRL1510', level: 'error',
    template: 'port {port} ({protocol}) of external host {host} is reached in plaintext by callers in {callers}: {why}; {policy} forbids plaintext egress; {fix}',
    docs: 'Compliance, security: traffic to a MESH_EXTERNAL ServiceEntry port leaves the mesh unencrypted: the port is not TLS or HTTPS (which the app encrypts itself), and the DestinationRule callers use for it does not originate TLS (tls.mode SIMPLE or MUTUAL). Originate TLS in a DestinationRule, or let the app speak TLS on a TLS/HTTPS port.',
  },
  EgressUnrestricted: {
    code: 'TRL1511', level: 'error',
    template: 'outboundTrafficPolicy is ALLOW_ANY{where}: workloads can send traffic, plaintext included, to any host the mesh does not know; {policy} asks for REGISTRY_ONLY; set MeshConfig spec.outboundTrafficPolicy.mode: REGISTRY_ONLY and declare external hosts as ServiceEntries',
    docs: 'Compliance, security: with MeshConfig outboundTrafficPolicy ALLOW_ANY (the default) the sidecars pass traffic to unknown hosts through, unencrypted and unchecked. Set REGISTRY_ONLY and declare each external host the mesh may reach as a ServiceEntry.',
  },
  RouteWithoutTimeout: {
    code: 'TRL1512', level: 'error',
    template: '{route} has no timeout{bound}: a slow or hung upstream holds the caller as long as it likes; {policy} asks for a timeout on every route; {fix}',
    docs: 'Compliance, runtime limits: an HTTP route has no timeout (Istio\'s default is none), so one slow upstream can hold callers, their connections and their callers in turn. Set http[].timeout in the VirtualService (for a service without one, add a VirtualService with a timeout).',
  },
  RouteTimeoutAboveLimit: {
    code: 'TRL1513', level: 'error',
    template: '{route} times out after {timeout}, longer than the upper latency limit {limit} of {policy}; lower the timeout to at most {limit}',
    docs: 'Compliance, runtime limits: an HTTP route\'s timeout is longer than the upper latency limit (runtimeLimits.maxTimeout) its CompliancePolicy states. Lower the timeout, or change the limit.',
  },
  RetriesAboveLimit: {
    code: 'TRL1514', level: 'error',
    template: '{route} retries up to {attempts} times{implicit}, more than the {max} {policy} allows: retries multiply the load on a failing upstream; set retries.attempts to at most {max}',
    docs: 'Compliance, runtime limits: an HTTP route may retry more often than its CompliancePolicy allows (runtimeLimits.maxRetries, 3 by default). A route without retries settings retries twice (Istio\'s default). Lower retries.attempts.',
  },
  RetriesExceedTimeout: {
    code: 'TRL1515', level: 'warning',
    template: '{route} makes up to {tries} tries of {perTry} each ({total}), more than its {limitName} {limit}: the last tries are cut off and never answer; lower retries.attempts or retries.perTryTimeout so that (attempts + 1) × perTryTimeout ≤ {limit}',
    docs: 'Compliance, runtime limits: the tries of a route (the first and each retry, each bounded by perTryTimeout) do not fit in the route timeout (or the upper latency limit), so the retries configured cannot all happen. Make (attempts + 1) × perTryTimeout fit.',
  },
  CompliancePolicyMatchesNothing: {
    code: 'TRL1516', level: 'warning',
    template: '{what} matches no {kind} of the registry, so this part of the policy checks nothing; a typo, or {kind}s not declared yet',
    docs: 'A CompliancePolicy\'s services, selector or tenant namespaces name nothing the registry has, so that part of it checks nothing. Fix the names or labels.',
  },
  CompliancePolicyShadowed: {
    code: 'TRL1517', level: 'warning',
    template: 'covers the same services as {other}, which was loaded first and decides {sections} for them; this policy\'s {sections} never apply; merge the two policies',
    docs: 'Two CompliancePolicies of one namespace cover the same services at the same level (both namespace-wide, or both naming a service) and state the same check; the first loaded decides, the other is never used.',
  },
  CompliancePolicyMisplaced: {
    code: 'TRL1518', level: 'warning',
    template: 'partitioning is read from the mesh-wide CompliancePolicy only (namespace {root}, no selector or services); here it defines no tenants; move it there',
    docs: 'Tenants are defined once for the whole mesh: partitioning is read only from a CompliancePolicy in the root namespace without selector or services. Elsewhere it is ignored.',
  },
} as const satisfies Record<string, Omit<MessageType, 'name'>>;

export type MessageName = keyof typeof table;

/** Every message type by name. */
export const messages: { readonly [K in MessageName]: MessageType } = Object.freeze(
  Object.fromEntries(
    Object.entries(table).map(([name, m]) => [name, Object.freeze({ name, ...m })]),
  ) as { [K in MessageName]: MessageType },
);

/** Every message type by code, for `trellis analyze --list-codes` and docs. */
export const messagesByCode: ReadonlyMap<string, MessageType> = new Map(
  Object.values(messages).map((m) => [m.code, m]),
);

/** Fills a template's `{placeholders}`; a missing argument stays visible as `{name}`. */
export function render(template: string, args: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) =>
    key in args ? String(args[key]) : whole,
  );
}
