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
    template: 'host {host} is also routed for the mesh by {others}; sidecars apply one VirtualService per host: merge them or delegate',
    docs: 'Two or more VirtualServices bound to the mesh claim the same host where both are visible; only one of them applies to sidecars, so the other one\'s routes are silently lost.',
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
  VirtualServiceDestinationPortSelectorRequired: {
    code: 'TRL0112', level: 'error',
    template: 'destination {host} has more than one port ({ports}) and the route does not say which: set destination.port.number',
    docs: 'A route to a service with several ports must name the port; otherwise the proxy cannot tell where to send the traffic.',
  },
  PortNameIsNotUnderNamingConvention: {
    code: 'TRL0118', level: 'info',
    template: 'port {port} of {service} is named "{portName}", which is not <protocol>[-suffix], and has no appProtocol: Trellis treats it as {assumed}',
    docs: 'A service port names its protocol by a name prefix (http, http2, grpc, tcp, tls, …) or appProtocol; without either the protocol is guessed. Name the port or set appProtocol.',
  },
  NoMatchingWorkloadsFound: {
    code: 'TRL0127', level: 'warning',
    template: 'no workload {scope} carries the labels {labels}: the policy applies to nothing',
    docs: 'A policy\'s selector (or its namespace) matches no workload of the registry, so it has no effect. A typo in the labels or the namespace, or workloads not declared yet.',
  },
  NoServerCertificateVerificationDestinationLevel: {
    code: 'TRL0128', level: 'warning',
    template: 'tls mode {mode} to {host} has no caCertificates: the server\'s certificate is not verified; set caCertificates, or credentialName with a workloadSelector',
    docs: 'A DestinationRule originates TLS without a CA to verify the server with, so any certificate is accepted and the connection can be intercepted.',
  },
  NoServerCertificateVerificationPortLevel: {
    code: 'TRL0129', level: 'warning',
    template: 'tls mode {mode} to {host} port {port} has no caCertificates: the server\'s certificate is not verified; set caCertificates, or credentialName with a workloadSelector',
    docs: 'As TRL0128, for one port\'s TLS settings (portLevelSettings[].tls).',
  },
  VirtualServiceUnreachableRule: {
    code: 'TRL0130', level: 'warning',
    template: '{rule} never matches: {reason}',
    docs: 'A VirtualService rule comes after a rule that matches everything it matches (the same match, or no match at all), so it is never used. Reorder or remove it.',
  },
  VirtualServiceIneffectiveMatch: {
    code: 'TRL0131', level: 'info',
    template: 'match {match} of {rule} repeats {earlier}: requests it matches are taken by the earlier rule',
    docs: 'One match condition of a rule duplicates a match of an earlier rule; the rule is still reachable through its other matches, but this one never takes effect.',
  },
  VirtualServiceHostNotFoundInGateway: {
    code: 'TRL0132', level: 'warning',
    template: 'none of the hosts {hosts} is admitted by gateway {gateway}: the gateway never routes to this VirtualService',
    docs: 'A VirtualService bound to a Gateway must share a host with one of the Gateway\'s servers (namespace/host syntax honoured); otherwise its routes never apply at that gateway.',
  },
  ServiceEntryAddressesRequired: {
    code: 'TRL0134', level: 'warning',
    template: 'port {port} ({protocol}) of {host} carries TCP but the ServiceEntry has no addresses: a sidecar cannot tell its connections from other TCP traffic on that port; set spec.addresses or an HTTP/TLS protocol',
    docs: 'TCP traffic is told apart by destination address only; a ServiceEntry with a TCP (or unnamed) port needs virtual IPs, unless DNS auto-allocation gives it some.',
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
    template: 'port {port} for hosts {hosts} on the workloads {selector} is also served by {others}: one of the servers is ignored',
    docs: 'Two Gateways select the same workloads and serve overlapping hosts on the same port; only one server can own a host and port.',
  },
  JwtClaimBasedRoutingWithoutRequestAuthN: {
    code: 'TRL0149', level: 'error',
    template: '{field} matches the JWT claim {claim}, but no RequestAuthentication applies to {workloads}: the claim is never set and the rule never matches',
    docs: 'Routing on @request.auth.claims needs a RequestAuthentication that validates the token on the same workloads (the gateway); without it the match never succeeds.',
  },
  ExternalNameServiceTypeInvalidPortName: {
    code: 'TRL0150', level: 'warning',
    template: 'port {port} of ExternalName service {service} is named "{portName}": {effect}; name it with an HTTP or TLS protocol',
    docs: 'An ExternalName service port named tcp (or unnamed) makes the proxy treat all traffic on the port as opaque TCP to the external name, which can capture unrelated traffic.',
  },
  GatewayPortNotDefinedOnService: {
    code: 'TRL0162', level: 'warning',
    template: 'port {port} is not a target port of any service in front of the workloads {selector}: nothing reaches this server',
    docs: 'A Gateway server listens on a port that no Service fronting the gateway workloads forwards to, so no client can reach it.',
  },
  ReferencedInternalGateway: {
    code: 'TRL0165', level: 'warning',
    template: 'gateway {gateway} is generated internally; refer to the Gateway resource it was made from',
    docs: 'A VirtualService names a Gateway that an implementation generates (such as one ending in -istio-autogenerated-k8s-gateway); refer to the user-written Gateway instead.',
  },
  IneffectivePolicy: {
    code: 'TRL0167', level: 'warning',
    template: 'the policy has no effect: {reason}',
    docs: 'A policy is written so that it never changes anything (it selects workloads it cannot apply to, or repeats what another policy already decides).',
  },
  DestinationRuleSubsetNotSelectPods: {
    code: 'TRL0173', level: 'error',
    template: 'subset {subset} selects no workload of {host}: requests routed to it fail with 503 (no healthy upstream)',
    docs: 'A DestinationRule subset\'s labels (with the ServiceEntry\'s workloadSelector) match no endpoint of its host. A typo in the labels, or workloads not declared yet.',
  },
  UnknownDestinationRuleHost: {
    code: 'TRL0174', level: 'warning',
    template: 'host {host} matches no service visible from namespace {namespace}: the rule applies to nothing',
    docs: 'A DestinationRule\'s host resolves to no Service or ServiceEntry the rule\'s namespace can see, so its policies never apply.',
  },
  ConflictingServiceEntryProtocol: {
    code: 'TRL0177', level: 'warning',
    template: 'host {host} port {port} is {protocol} here but {otherProtocol} in {other}: which protocol applies is undefined',
    docs: 'Two ServiceEntries visible in the same namespaces declare one host and port with different protocols.',
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
  AnalyzerFailed: {
    code: 'TRL1401', level: 'error',
    template: 'analyzer {analyzer} failed: {detail}; this is a Trellis bug, please report it with the configuration',
    docs: 'An analyzer threw instead of reporting; its checks did not run. The other analyzers still ran.',
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
