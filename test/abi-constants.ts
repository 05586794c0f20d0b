/**
 * Every ISAPI constant of bridge/abi/constants.ts with the C macro name httpext.h
 * (and winerror.h) gives it. The layout tests print each macro from C and compare.
 */
import { HSE_EXEC_URL, HSE_IO, HSE_REQ, HSE_STATUS, HSE_TERM, HSE_URL_FLAGS, HSE_VERSION, WIN32_ERROR } from '../bridge/abi/constants';

export function abiConstants(): Array<[macro: string, value: number]> {
  const out: Array<[string, number]> = [['HSE_VERSION', HSE_VERSION]];
  for (const [k, v] of Object.entries(HSE_STATUS)) out.push([`HSE_STATUS_${k}`, v]);
  for (const [k, v] of Object.entries(HSE_TERM)) out.push([`HSE_TERM_${k}`, v]);
  for (const [k, v] of Object.entries(HSE_IO)) out.push([`HSE_IO_${k}`, v]);
  for (const [k, v] of Object.entries(HSE_URL_FLAGS)) out.push([`HSE_URL_FLAGS_${k}`, v]);
  for (const [k, v] of Object.entries(HSE_EXEC_URL)) out.push([`HSE_EXEC_URL_${k}`, v]);
  // httpext.h names this one without the _REQ_ infix.
  for (const [k, v] of Object.entries(HSE_REQ)) out.push([k === 'APPEND_LOG_PARAMETER' ? 'HSE_APPEND_LOG_PARAMETER' : `HSE_REQ_${k}`, v]);
  // Winsock codes live in winsock2.h, not in the ISAPI header.
  for (const [k, v] of Object.entries(WIN32_ERROR)) if (!k.startsWith('WSA')) out.push([`ERROR_${k}`, v]);
  return out;
}
