// Regions are the ones libphonenumber has metadata for; aliases point at the code they mean.
import t from 'tap';
import { getCountries } from 'libphonenumber-js/max';
import { isSupportedRegion, regionProblem } from '../../src/config/region.js';

t.test('every region libphonenumber supports passes, nothing else', async (t) => {
  for (const c of getCountries()) t.equal(regionProblem(c), undefined, c);
  t.ok(isSupportedRegion('XK'), 'Kosovo: a user-assigned code libphonenumber knows');
  t.notOk(isSupportedRegion('UK'));
});

t.test('UK, XX, EU are refused; UK (and gb, a country name) with the code meant', async (t) => {
  t.equal(
    regionProblem('UK'),
    'a region code libphonenumber knows (ISO 3166-1 alpha-2, such as "GB" or "US"), not "UK": did you mean "GB"?',
  );
  t.match(regionProblem('XX'), /, not "XX"$/, 'no guess for a code that is nothing');
  t.match(regionProblem('EU'), /not "EU" \(European Union: not one country\)$/);
  t.match(regionProblem('gb'), /did you mean "GB"\?$/);
  t.match(regionProblem('United Kingdom'), /did you mean "GB"\?$/);
  t.match(regionProblem('DD'), /did you mean "DE"\?$/, 'a retired code CLDR still names');
  t.match(regionProblem('England'), /not "England"$/);
});
