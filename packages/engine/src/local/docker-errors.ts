import { ErrorKind } from '@berth/errors';
import { EngineErrorCode, engineError, type EngineError } from '../engine.js';

/** docker's errors, word for word where the docker CLI and its users read them. */

export function noSuchContainer(ref: string): EngineError {
  return engineError(`No such container: ${ref}`, EngineErrorCode.ContainerNotFound, ErrorKind.NotFound);
}

export function noSuchVolume(name: string): EngineError {
  return engineError(`get ${name}: no such volume`, EngineErrorCode.VolumeNotFound, ErrorKind.NotFound);
}

export function noSuchExec(id: string): EngineError {
  return engineError(`No such exec instance: ${id}`, EngineErrorCode.ExecNotFound, ErrorKind.NotFound);
}

export function nameInUse(name: string, id: string): EngineError {
  return engineError(
    `Conflict. The container name "/${name}" is already in use by container "${id}". You have to remove (or rename) that container to be able to reuse that name.`,
    EngineErrorCode.NameInUse,
    ErrorKind.Conflict,
  );
}

export function notRunning(id: string): EngineError {
  return engineError(`Container ${id} is not running`, EngineErrorCode.ContainerNotRunning, ErrorKind.Conflict);
}

export function isPaused(id: string): EngineError {
  return engineError(
    `Container ${id} is paused, unpause the container before stopping or killing`,
    EngineErrorCode.ContainerPaused,
    ErrorKind.Conflict,
  );
}

export function invalidParameter(message: string, cause?: unknown): EngineError {
  return engineError(message, EngineErrorCode.InvalidParameter, ErrorKind.InvalidArgument, cause === undefined ? {} : { cause });
}

export function notImplemented(message: string): EngineError {
  return engineError(message, EngineErrorCode.NotImplemented, ErrorKind.NotImplemented);
}

export function inUse(message: string): EngineError {
  return engineError(message, EngineErrorCode.InUse, ErrorKind.Conflict);
}
