import t from 'tap';
import { closest, editDistance, orList } from '../../src/config/suggest.js';

t.test('edit distance: insertions, deletions, swaps; case does not count', async (t) => {
  t.equal(editDistance('usename', 'username'), 1);
  t.equal(editDistance('hots', 'host'), 1, 'a swap is one edit');
  t.equal(editDistance('timezone', 'timeZone'), 0);
  t.equal(editDistance('', 'abc'), 3);
});

t.test('closest: near candidates only, nearest first', async (t) => {
  const keys = ['host', 'port', 'username', 'secret', 'pingIntervalMs', 'pingTimeoutMs'];
  t.same(closest('usename', keys), ['username']);
  t.same(closest('pingInterval', keys), ['pingIntervalMs']);
  t.same(closest('colour', keys), [], 'nothing near: no guess');
  t.same(closest('port', keys), [], 'the word itself is not a suggestion');
  t.same(orList(['a']), '"a"');
  t.same(orList(['a', 'b', 'c']), '"a", "b" or "c"');
});
