// Service errors shaped like @powersync/lib-services-framework's ServiceError (errorData).
export class ServiceError extends Error {
  constructor({ code, status, description, details, severity }) {
    super(`[${code}] ${description}${details ? `\n  ${details}` : ''}`);
    this.errorData = { name: 'ServiceError', code, status, description, details, severity };
    for (const k of Object.keys(this.errorData)) if (this.errorData[k] === undefined) delete this.errorData[k];
  }
}

export class AuthorizationError extends ServiceError {
  constructor(code, description, details) {
    super({ code, status: 401, description, details });
    this.errorData.name = 'AuthorizationError';
  }
}

/** A fatal configuration / start-up error: the process exits with code 150. */
export class FatalStartupError extends Error {}
