// Service errors shaped like @powersync/lib-services-framework's ServiceError (errorData).
export class ServiceError extends Error {
  constructor({ code, status, description, details, severity }) {
    super(`[${code}] ${description}${details ? `\n  ${details}` : ''}`);
    this.errorData = { name: 'ServiceError', code, status, description, details, severity };
    for (const k of Object.keys(this.errorData)) if (this.errorData[k] === undefined) delete this.errorData[k];
  }
}

// The real AuthorizationError keeps its details (token and configuration details) for the
// service's own logs, never in the 401 body: observed on the real 1.25.0 image built from source.
export class AuthorizationError extends ServiceError {
  constructor(code, description, details) {
    super({ code, status: 401, description, details });
    this.errorData.name = 'AuthorizationError';
    delete this.errorData.details;
  }
}

/** A fatal configuration / start-up error: the process exits with code 150. */
export class FatalStartupError extends Error {}
