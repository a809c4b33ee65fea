import {
  StratumError,
  StratumErrorCode,
  formatNotification,
  formatResponse,
  parseStratumRequest,
} from '@hashwire/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

function errorOf(line: string): StratumError {
  try {
    parseStratumRequest(line);
  } catch (e) {
    return e as StratumError;
  }
  throw new Error(`expected ${line} to be refused`);
}

describe('parseStratumRequest', () => {
  it('parses a subscribe with and without params', () => {
    expect(parseStratumRequest('{"id":1,"method":"mining.subscribe","params":["cgminer/4.11"]}')).toEqual({
      id: 1,
      method: 'mining.subscribe',
      params: ['cgminer/4.11'],
    });
    expect(parseStratumRequest('{"id":"a","method":"mining.subscribe"}').params).toEqual([]);
  });

  it.each([
    ['not json', 'invalid JSON'],
    ['[1,2]', 'JSON object'],
    ['null', 'JSON object'],
    ['{"id":1}', '"method"'],
    ['{"id":1,"method":42}', '"method"'],
    ['{"id":{},"method":"mining.submit"}', '"id"'],
    ['{"id":1,"method":"mining.submit","params":"x"}', '"params"'],
  ])('refuses %s with code 20 and a message naming the problem', (line, words) => {
    const error = errorOf(line);
    expect(error).toBeInstanceOf(StratumError);
    expect(error.code).toBe(StratumErrorCode.Other);
    expect(error.message).toContain(words);
    expect(error.toTuple()).toEqual([20, error.message, null]);
  });

  it('property: never throws anything but a StratumError, whatever the line', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (line) => {
        try {
          parseStratumRequest(line);
        } catch (e) {
          expect(e).toBeInstanceOf(StratumError);
        }
      }),
    );
  });
});

describe('formatting', () => {
  it('writes responses and notifications as one JSON line each', () => {
    expect(formatResponse(3, true)).toBe('{"id":3,"result":true,"error":null}\n');
    expect(formatResponse(4, null, [22, 'duplicate share', null])).toBe(
      '{"id":4,"result":null,"error":[22,"duplicate share",null]}\n',
    );
    expect(formatNotification('mining.set_difficulty', [0.5])).toBe(
      '{"id":null,"method":"mining.set_difficulty","params":[0.5]}\n',
    );
  });
});
