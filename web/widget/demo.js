// The demo shop page: loads the widget with the tenant and website token from the page's address
// (`?tenant=T&token=WEBSITE_TOKEN`), as a merchant's page would with its own tag.
(function () {
  'use strict';
  var query = new URLSearchParams(location.search);
  var tenant = query.get('tenant');
  var token = query.get('token');
  if (!tenant || !token) {
    document.getElementById('hint').hidden = false;
  }
  var tag = document.createElement('script');
  tag.src = '/widget.js';
  tag.setAttribute('data-tenant', tenant || '');
  tag.setAttribute('data-token', token || '');
  tag.setAttribute('data-open', query.get('open') === 'false' ? 'false' : 'true');
  if (query.get('lang')) tag.setAttribute('data-lang', query.get('lang'));
  document.body.appendChild(tag);
})();
