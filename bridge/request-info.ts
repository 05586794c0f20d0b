/**
 * What the bridge knows about one HTTP request: everything the gateway saw on the
 * client connection plus the routing decision (which app, SCRIPT_NAME, PATH_INFO).
 * It crosses the wire in the REQUEST frame and feeds the ECB and GetServerVariable.
 */
export interface RequestInfo {
  /** Gateway-assigned id, echoed in logs and in the X-Request-Id response header. */
  requestId: string;
  /** Name of the configured app (extension) that serves this request. */
  appName: string;
  method: string;
  /** The raw request target as the client sent it, e.g. `/scripts/hello.dll/a/b?x=1`. */
  url: string;
  /** `1.0` or `1.1`. */
  httpVersion: string;
  /** Headers in arrival order with the client's own spelling, as Node's `rawHeaders` pairs. */
  headers: Array<[name: string, value: string]>;
  /** URL path of the extension itself, e.g. `/scripts/hello.dll` (SCRIPT_NAME). */
  scriptName: string;
  /** Decoded path after the extension name, e.g. `/a/b`; "" when none (PATH_INFO). */
  pathInfo: string;
  /** Everything after `?`, undecoded, without the `?`; "" when absent (never null). */
  queryString: string;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** True when the client connection to the gateway is TLS (HTTPS=on, SERVER_PORT_SECURE=1). */
  secure: boolean;
  /** Content-Length, or -1 when the body is chunked / of unknown length. */
  contentLength: number;
}

/** Per-app settings the bridge needs to answer server variables and URL mapping. */
export interface AppSettings {
  name: string;
  /** Absolute path of the extension library (.dll / .so). */
  library: string;
  /** Physical directory of the application (APPL_PHYSICAL_PATH), used by MAP_URL_TO_PATH. */
  physicalPath: string;
  /** Virtual directory the app is mounted under, e.g. `/scripts` for `/scripts/hello.dll`. */
  virtualPath: string;
  /** Metabase-style path, e.g. `/LM/W3SVC/1/ROOT/scripts` (APPL_MD_PATH). */
  appMdPath: string;
  /** Site instance id (INSTANCE_ID), 1 by default as on a default IIS site. */
  instanceId: number;
  /** Largest body prefix handed over in lpbData before HttpExtensionProc (IIS UploadReadAheadSize). */
  readAhead: number;
  /**
   * Response bytes held back before they go out (IIS's responseBufferLimit): IIS 7 and
   * later buffer an ISAPI extension's output until the response ends (KB 946086).
   * 0 sends every write at once, as IIS 6 did.
   */
  responseBufferLimit: number;
  /** A PENDING request that has not called DONE_WITH_SESSION after this long is ended (0: never). */
  pendingTimeoutMs?: number;
  /**
   * Run HttpExtensionProc on a thread-pool thread so that its own threads' callbacks can be
   * served while it waits for them (extensions that block in HttpExtensionProc until another
   * thread of theirs has answered). Every callback then crosses threads: slower, so opt-in.
   */
  relayCallbacks?: boolean;
  /** How many requests of this app may run HttpExtensionProc at once; the rest queue. */
  maxConcurrency: number;
  /** Most requests of this app waiting for a thread; more are refused with 503 + Retry-After. Unlimited when absent. */
  maxQueue?: number;
}
