-- Demo data, part 4: web behaviour (sessions, funnel, searches, experiments), carts, content,
-- back-office activity.

-- step: analytics.experiments
insert into analytics.experiments (id, key, description, started_at, ended_at)
select 1, 'checkout_redesign', 'One-page checkout against the three-step checkout', cfg.start_ts, null::timestamptz from cfg
union all select 2, 'search_ranking_v2', 'Learning-to-rank search against keyword ranking', cfg.start_ts + interval '120 days', null::timestamptz from cfg
union all select 3, 'free_shipping_banner', 'Banner announcing the free-shipping threshold', cfg.start_ts, cfg.start_ts + interval '90 days' from cfg;

-- step: analytics.experiment_variants
insert into analytics.experiment_variants (id, experiment_id, name, traffic_share) values
  (1, 1, 'control', 0.5), (2, 1, 'one_page', 0.5), (3, 2, 'control', 0.5), (4, 2, 'ltr', 0.5),
  (5, 3, 'control', 0.5), (6, 3, 'banner', 0.5);

-- step: tmp.sessions
-- Sessions are recorded for visitors who accept analytics (a quarter of the orders come from a
-- recorded session). Purchase sessions share their order's id and end minutes after it; the
-- others browse: half leave after a page, the rest look at products, a few fill a cart and
-- fewer check out, so about 3% of sessions buy. A session still going on at the anchor is not
-- recorded yet, except when it bought (its end is then unknown).
create temp table tmp_sessions on commit drop as
select o.id, o.account_id, o.placed_at - (6 + pg_temp.r(o.id, 801) * 30) * interval '1 minute' as started_at,
       case when o.placed_at + (1 + pg_temp.r(o.id, 810) * 4) * interval '1 minute' < cfg.anchor
            then o.placed_at + (1 + pg_temp.r(o.id, 810) * 4) * interval '1 minute' end as ended_at,
       (6 + pg_temp.r(o.id, 801) * 30) * interval '1 minute' as span,
       true as purchase, o.id as order_id, true as engaged, true as cart, true as checkout,
       true as payment, case when pg_temp.r(o.id, 820) < 0.56 then 2 else 1 end as variant
from cfg, orders.orders o where pg_temp.r(o.id, 800) < 0.25
union all
select b.id, b.account_id, b.started_at, b.started_at + b.span, b.span, false, null, b.engaged,
       b.cart, b.checkout,
       b.checkout and pg_temp.r(b.id, 833) < case when b.variant = 2 then 0.55 else 0.4 end,
       b.variant
from cfg, lateral (
  select x.id, x.account_id, x.started_at, x.engaged,
         case when x.engaged then (3 + pg_temp.r(x.id, 807) * 22) * interval '1 minute'
              else (10 + pg_temp.r(x.id, 807) * 110) * interval '1 second' end as span,
         x.engaged and pg_temp.r(x.id, 831) < 0.09 as cart,
         x.engaged and pg_temp.r(x.id, 831) < 0.09 and pg_temp.r(x.id, 832) < 0.4 as checkout,
         case when pg_temp.r(x.id, 820) < 0.5 then 2 else 1 end as variant
  from (
    select cfg.n_orders + s as id,
           case when pg_temp.r(s, 802) < 0.35 then
             1 + floor(greatest(1, ceil(cfg.n_accounts * power((d + 364) / 730.0, 1 / 0.6)) - 1)
                       * pg_temp.r(s, 803))::bigint end as account_id,
           cfg.start_ts + d * interval '1 day'
             + width_bucket(pg_temp.r(s, 804), cfg.hour_cdf) * interval '1 hour'
             + pg_temp.r(s, 805) * interval '1 hour' as started_at,
           pg_temp.r(cfg.n_orders + s, 830) < 0.45 as engaged
    from (select s, width_bucket(pg_temp.r(s, 806), cfg.day_cdf) as d
          from generate_series(1, cfg.n_browse_sessions) s) g
  ) x
) b
where b.started_at + b.span < cfg.anchor;

-- step: analytics.sessions
insert into analytics.sessions (id, account_id, started_at, ended_at, device, channel_id, ip_address)
select s.id, s.account_id, s.started_at, s.ended_at,
       (array['desktop','mobile','mobile','tablet','app'])[1 + floor(pg_temp.r(s.id, 811) * 5)::int],
       1 + width_bucket(pg_temp.r(s.id, 812), array[0.30, 0.50, 0.65, 0.78, 0.86, 0.94]),
       ('172.16.' || (s.id % 250) || '.' || (s.id / 250) % 250)::inet
from tmp_sessions s order by s.id;

-- step: orders.orders.session_id
update orders.orders o set session_id = s.id from tmp_sessions s where s.order_id = o.id;

-- step: tmp.searched
-- Engaged visitors search now and then; buyers more often.
create temp table tmp_searched on commit drop as
select s.id, s.started_at, pg_temp.r(s.id, 861) < 0.08 as zero
from tmp_sessions s
where s.engaged and pg_temp.r(s.id, 860) < case when s.purchase then 0.5 else 0.35 end;

-- step: analytics.experiment_assignments
-- Every visitor sees one checkout variant; the ranking test runs on searches from day 120; the
-- banner test ran on half the visitors of the first 90 days.
insert into analytics.experiment_assignments (session_id, experiment_id, variant_id, assigned_at)
select s.id, 1, s.variant, s.started_at
from tmp_sessions s
union all
select se.id, 2, 3 + (pg_temp.r(se.id, 821) < 0.5)::int, se.started_at
from cfg, tmp_searched se
where se.started_at >= cfg.start_ts + interval '120 days' and pg_temp.r(se.id, 822) < 0.5
union all
select s.id, 3, 5 + (pg_temp.r(s.id, 823) < 0.5)::int, s.started_at
from cfg, tmp_sessions s where s.started_at < cfg.start_ts + interval '90 days' and pg_temp.r(s.id, 824) < 0.5
order by 1, 2;

-- step: analytics.funnel_events
-- Steps in order through the session; a purchase is the moment the order was placed.
insert into analytics.funnel_events (session_id, step, occurred_at)
select s.id, st.step, s.started_at + s.span * st.k / case when s.purchase then 5 else 6 end
from tmp_sessions s,
     lateral (values (0, 'visit', true), (1, 'product_view', s.engaged),
                     (2, 'add_to_cart', s.cart), (3, 'checkout', s.checkout),
                     (4, 'payment', s.payment), (5, 'purchase', s.purchase)) st(k, step, reached)
where st.reached
order by s.id, st.k;

-- step: analytics.page_views
insert into analytics.page_views (session_id, path, viewed_at)
select s.id, (array['/', '/c/electronics', '/c/fashion', '/deals', '/help', '/account'])
             [1 + floor(pg_temp.r(s.id * 4 + k, 840) * 6)::int],
       s.started_at + s.span * (k - 1) / 4
from tmp_sessions s, generate_series(1, 3) k
where k = 1 or (s.engaged and pg_temp.r(s.id * 4 + k, 841) < 0.9 / k)
order by s.id, k;

-- step: analytics.product_views
insert into analytics.product_views (session_id, product_id, viewed_at)
select s.id,
       case when s.purchase and k = 1 then
              (select sk.product_id from orders.order_items oi join product.skus sk on sk.id = oi.sku_id
               where oi.order_id = s.id order by oi.id limit 1)
            else 1 + floor(power(pg_temp.r(s.id * 4 + k, 850), 1.8) * cfg.n_products)::bigint end,
       s.started_at + s.span * (1 + 0.3 * k) / 6
from cfg, tmp_sessions s, generate_series(1, 3) k
where s.engaged and (k = 1 or pg_temp.r(s.id * 4 + k, 851) < 0.5 / (k - 1))
order by s.id, k;

-- step: analytics.searches
insert into analytics.searches (id, session_id, query, results_count, searched_at)
select se.id, se.id, q.query,
       case when se.zero then 0 else (5 + floor(pg_temp.r(se.id, 862) * 300))::int end,
       se.started_at + interval '30 seconds'
from tmp_searched se,
     lateral (select case when se.zero then
                (array['iphnoe 15', 'adidsa sneakers', 'vaccum cleaner', 'lego milenium falcon',
                       'ps6', 'organic dog food grain free large', 'samsnug tv'])
                [1 + floor(pg_temp.r(se.id, 863) * 7)::int]
              else (array['iphone', 'sneakers', 'vacuum cleaner', 'lego', 'coffee machine',
                          'dog food', 'tv', 'headphones', 'running shoes', 'desk lamp',
                          'yoga mat', 'winter jacket', 'air fryer', 'backpack', 'perfume'])
                   [1 + floor(power(pg_temp.r(se.id, 864), 1.5) * 15)::int] end as query) q
order by se.id;

-- step: analytics.search_results
-- The first page's top results, as shown.
insert into analytics.search_results (search_id, position, product_id, clicked)
select se.id, k::smallint, 1 + floor(pg_temp.r(se.id * 8 + k, 870) * cfg.n_products)::bigint,
       pg_temp.r(se.id * 8 + k, 871) < 0.30 / k
from cfg, analytics.searches se, generate_series(1, 4) k
where se.results_count > 0
order by se.id, k;

-- step: orders.carts
insert into orders.carts (id, account_id, session_id, created_at, converted_order_id)
select s.id, s.account_id, s.id, s.started_at + s.span * 2 / case when s.purchase then 5 else 6 end,
       case when s.purchase then s.id end
from tmp_sessions s where s.cart order by s.id;

-- step: orders.cart_items
insert into orders.cart_items (cart_id, sku_id, quantity, added_at)
select c.id, oi.sku_id, sum(oi.quantity), c.created_at
from orders.carts c join orders.order_items oi on oi.order_id = c.converted_order_id
group by c.id, oi.sku_id, c.created_at
union all
select c.id, 1 + floor(power(pg_temp.r(c.id, 880), 2.2) * cfg.n_skus)::bigint, 1, c.created_at
from cfg, orders.carts c where c.converted_order_id is null
order by 1, 2;

-- step: analytics.daily_kpis
insert into analytics.daily_kpis (day, sessions, orders, revenue)
select d::date,
       (select count(*) from analytics.sessions s where s.started_at >= d and s.started_at < d + interval '1 day'),
       (select count(*) from orders.orders o where o.placed_at >= d and o.placed_at < d + interval '1 day'),
       (select coalesce(sum(o.total), 0) from orders.orders o where o.placed_at >= d and o.placed_at < d + interval '1 day')
from cfg, generate_series(cfg.start_ts, cfg.anchor - interval '1 day', interval '1 day') d;

-- step: content.authors
insert into content.authors (id, display_name, email)
select g, 'Author ' || g, 'author' || g || '@marketplace.example' from generate_series(1, 15) g;

-- step: content.topics
insert into content.topics (id, name)
select g, (array['How-to','Gift guides','Reviews','Trends','Sustainability','Tech','Style',
                 'Home','Fitness','Parenting','Pets','Deals'])[g]
from generate_series(1, 12) g;

-- step: content.articles
insert into content.articles (id, author_id, title, slug, published_at, word_count)
select g, 1 + floor(power(pg_temp.r(g, 900), 1.5) * 15)::int, 'Article ' || g, 'article-' || g,
       case when pg_temp.r(g, 901) < 0.05 then null
            else cfg.acc_start + (g::float8 / cfg.n_articles) * interval '728 days' end,
       (400 + floor(pg_temp.r(g, 902) * 2600))::int
from cfg, generate_series(1, cfg.n_articles) g;

-- step: content.article_topics
insert into content.article_topics (article_id, topic_id)
select distinct a.id, 1 + floor(pg_temp.r(a.id * 3 + k, 910) * 12)::int
from content.articles a, generate_series(1, 2) k order by 1, 2;

-- step: content.article_products
insert into content.article_products (article_id, product_id)
select distinct a.id, 1 + floor(pg_temp.r(a.id * 4 + k, 920) * cfg.n_products)::bigint
from cfg, content.articles a, generate_series(1, 3) k order by 1, 2;

-- step: content.pages
insert into content.pages (id, path, title, updated_at)
select g, '/page/' || g, 'Page ' || g, cfg.start_ts + g * interval '10 days'
from cfg, generate_series(1, 20) g;

-- step: content.media
insert into content.media (id, url, kind, bytes, uploaded_at)
select g, 'https://cdn.marketplace.example/m/' || g, case when g % 10 = 0 then 'video' else 'image' end,
       (20000 + floor(pg_temp.r(g, 930) * 5000000))::bigint, cfg.acc_start + g * interval '1 day'
from cfg, generate_series(1, 400) g;

-- step: content.banners
insert into content.banners (id, media_id, campaign_id, target_path, active_from, active_until)
select g, g * 7, case when g <= 25 then g end, '/deals/' || g,
       cfg.start_ts + g * interval '12 days', cfg.start_ts + (g * 12 + 10) * interval '1 day'
from cfg, generate_series(1, 30) g;

-- step: content.navigation_items
insert into content.navigation_items (id, parent_id, label, path, position)
select g, case when g > 10 then 1 + (g - 11) % 10 end, 'Menu ' || g, '/nav/' || g, (g % 10)::smallint
from generate_series(1, 40) g;

-- step: content.article_views
insert into content.article_views (id, article_id, session_id, viewed_at, seconds_on_page)
select v, a, s.id, s.started_at + (coalesce(s.ended_at, cfg.anchor) - s.started_at) * 0.3,
       (10 + floor(power(pg_temp.r(v, 942), 2) * 600))::int
from cfg, generate_series(1, cfg.n_article_views) v,
     lateral (select 1 + floor(power(pg_temp.r(v, 940), 1.7) * cfg.n_articles)::bigint as a,
                     1 + floor(pg_temp.r(v, 941) * (cfg.n_orders + cfg.n_browse_sessions))::bigint as sid) x
join analytics.sessions s on s.id = x.sid
join content.articles ar on ar.id = x.a and ar.published_at < s.started_at
order by v;

-- step: content.article_clicks
insert into content.article_clicks (article_view_id, product_id, clicked_at)
select v.id, ap.product_id, v.viewed_at + (v.seconds_on_page / 2) * interval '1 second'
from cfg, content.article_views v
join lateral (select product_id from content.article_products p where p.article_id = v.article_id
              order by product_id limit 1) ap on true
where pg_temp.r(v.id, 950) < 0.12 + least(v.seconds_on_page, 300) / 1500.0
  and v.viewed_at + (v.seconds_on_page / 2) * interval '1 second' < cfg.anchor
order by v.id;

-- step: admin.roles
insert into admin.roles (id, name) values
  (1, 'catalog_manager'), (2, 'pricing'), (3, 'marketing'), (4, 'support_lead'), (5, 'superadmin');

-- step: admin.permissions
insert into admin.permissions (role_id, permission)
select r, p from generate_series(1, 5) r,
     unnest(array['product.create','product.delete','price.change','promo.create','promo.update',
                  'order.status_change']) with ordinality as x(p, i)
where r = 5 or i % 5 + 1 = r or (r = 1 and p like 'product.%');

-- step: admin.admins
insert into admin.admins (id, email, full_name, active, created_at)
select g, 'admin' || g || '@marketplace.example', 'Staff Member ' || g, g % 13 <> 0,
       cfg.acc_start + g * interval '9 days'
from cfg, generate_series(1, 40) g;

-- step: admin.admin_roles
insert into admin.admin_roles (admin_id, role_id, granted_at)
select a.id, 1 + a.id % 5, a.created_at from admin.admins a
union all select 1, 5, a.created_at from admin.admins a where a.id = 1 and 1 + a.id % 5 <> 5
order by 1, 2;

-- step: tmp.admin_days
-- Office life in Berlin: active admins work most weekdays (not in their vacation weeks), start
-- between 7:30 and 9:30, often sign in again after lunch, sometimes stay late; a few take a
-- weekend shift.
create temp table tmp_admin_days on commit drop as
select row_number() over (order by w.login_at, w.admin_id) as n, w.*
from (
  select a.id as admin_id, x.login_at,
         case when pg_temp.r(a.id * 1000 + d, 973) < 0.45 and not x.weekend
              then x.login_at + (4 + pg_temp.r(a.id * 1000 + d, 974)) * interval '1 hour' end
           as second_login_at,
         x.login_at + case when x.weekend then (1 + 2 * pg_temp.r(a.id * 1000 + d, 975))
                           else 7.5 + 2 * pg_temp.r(a.id * 1000 + d, 975)
                                + case when pg_temp.r(a.id * 1000 + d, 976) < 0.05 then 2.5 else 0 end
                      end * interval '1 hour' as leave_at,
         ('10.200.' || (1 + a.id % 4) || '.' || a.id)::inet as ip,
         a.id % 7 <> 0 and pg_temp.r(a.id * 1000 + d, 977) >= 0.02 as mfa_used,
         pg_temp.r(a.id * 1000 + d, 978) < 0.04 as mistyped
  from cfg, admin.admins a, generate_series(0, cfg.days) d,
       lateral (select (cfg.start_ts at time zone 'Europe/Berlin')::date + d::int as day) dd,
       lateral (select extract(isodow from dd.day) >= 6 as weekend,
                       (dd.day + (7.5 + 2 * power(pg_temp.r(a.id * 1000 + d, 970), 2)) * interval '1 hour')
                         at time zone 'Europe/Berlin' as login_at) x
  where a.active
    and pg_temp.r(a.id * 1000 + d, 971) < case when x.weekend then 0.04 else 0.93 end
    and pg_temp.r(a.id * 100 + d / 7, 972) >= 0.06
    and x.login_at >= cfg.start_ts
) w, cfg
where w.leave_at < cfg.anchor;

-- step: tmp.anomalies
-- The seeded stories, dated by the last local days before the anchor (L is the anchor's date in
-- Berlin): the night of L-1 the deactivated admin 13 signs in again and again and deletes
-- products in bulk; on L-2 at 23:00 admin 27 changes prices from an unknown network (the
-- night an outside address tries to sign in, see admin.failed_access_attempts).
create temp table tmp_anomalies on commit drop as
select (cfg.anchor at time zone 'Europe/Berlin')::date as l from cfg;

-- step: admin.audit_log
-- Routine work happens during a signed-in workday; the two stories above on top.
insert into admin.audit_log (admin_id, action, entity_type, entity_id, details, ip_address, occurred_at)
select a.admin_id, a.action, split_part(a.action, '.', 1), a.entity_id, a.details, a.ip, a.at
from (
  select w.admin_id,
         (array['product.create','product.update','price.change','price.change','promo.create',
                'promo.update','order.status_change','order.status_change','product.delete'])
           [1 + floor(pg_temp.r(g, 961) * 9)::int] as action,
         1 + floor(pg_temp.r(g, 962) * cfg.n_products)::bigint as entity_id,
         jsonb_build_object('note', 'routine') as details, w.ip,
         w.login_at + pg_temp.r(g, 965) * (w.leave_at - w.login_at) as at
  from cfg, generate_series(1, cfg.n_audit) g,
       lateral (select 1 + floor(pg_temp.r(g, 960) * (select count(*) from tmp_admin_days))::bigint as n) x
  join tmp_admin_days w on w.n = x.n
  union all
  select 13, 'product.delete', 1 + (g * 37) % cfg.n_products, jsonb_build_object('bulk', true),
         '10.200.3.13'::inet,
         ((t.l - 1) + interval '2 hours 10 minutes') at time zone 'Europe/Berlin' + g * interval '20 seconds'
  from cfg, tmp_anomalies t, generate_series(1, 45) g
  union all
  select 27, 'price.change', 1 + (g * 53) % cfg.n_products,
         jsonb_build_object('old', 100, 'new', 1), '198.51.100.77'::inet,
         ((t.l - 2) + interval '23 hours') at time zone 'Europe/Berlin' + g * interval '1 minute'
  from cfg, tmp_anomalies t, generate_series(1, 12) g
) a
order by a.at, a.admin_id;

-- step: admin.admin_logins
insert into admin.admin_logins (admin_id, logged_in_at, ip_address, mfa_used)
select l.admin_id, l.at, l.ip, l.mfa
from (
  select w.admin_id, w.login_at as at, w.ip, w.mfa_used as mfa from tmp_admin_days w
  union all
  select w.admin_id, w.second_login_at, w.ip, w.mfa_used from tmp_admin_days w
  where w.second_login_at is not null
  union all
  -- The night burst: eight sign-ins in half an hour, without MFA.
  select 13, ((t.l - 1) + interval '2 hours') at time zone 'Europe/Berlin' + g * interval '4 minutes',
         '10.200.3.13'::inet, false
  from tmp_anomalies t, generate_series(0, 7) g
  union all
  select 27, ((t.l - 2) + interval '22 hours 55 minutes') at time zone 'Europe/Berlin',
         '198.51.100.77'::inet, false
  from tmp_anomalies t
) l
order by l.at, l.admin_id;

-- step: admin.failed_access_attempts
insert into admin.failed_access_attempts (username, admin_id, ip_address, reason, attempted_at)
select f.username, f.admin_id, f.ip, f.reason, f.at
from (
  -- Mistyped passwords just before a sign-in.
  select 'admin' || w.admin_id || '@marketplace.example' as username, w.admin_id, w.ip,
         'wrong_password' as reason,
         w.login_at - (20 + pg_temp.r(w.n, 979) * 70) * interval '1 second' as at
  from tmp_admin_days w where w.mistyped
  union all
  select 'admin13@marketplace.example', 13, '10.200.3.13'::inet, 'wrong_password',
         ((t.l - 1) + interval '1 hour 55 minutes') at time zone 'Europe/Berlin' + g * interval '40 seconds'
  from tmp_anomalies t, generate_series(0, 2) g
  union all
  -- The attack: one outside address tries 180 usernames in twenty minutes on the night of L-2,
  -- nine in ten of them not an admin's.
  select case when g % 10 = 0 then 'admin' || (1 + g / 10 % 40) || '@marketplace.example'
              else (array['admin','root','administrator','test','support','info','webmaster',
                          'guest','office','it'])[1 + g % 10] || (g / 10) || '@marketplace.example' end,
         case when g % 10 = 0 then 1 + g / 10 % 40 end,
         '203.0.113.66'::inet,
         case when g % 10 = 0 then 'wrong_password' else 'unknown_user' end,
         ((t.l - 2) + interval '3 hours') at time zone 'Europe/Berlin' + g * interval '7 seconds'
  from tmp_anomalies t, generate_series(1, 180) g
) f
order by f.at;

-- step: marketing.email_sends
insert into marketing.email_sends (campaign_id, account_id, sent_at, opened_at, clicked_at)
select c.id, a.id, c.starts_at + interval '8 hours',
       case when pg_temp.r(a.id * 41 + c.id, 990) < 0.35 then c.starts_at + interval '10 hours' end,
       case when pg_temp.r(a.id * 41 + c.id, 990) < 0.06 then c.starts_at + interval '10 hours 2 minutes' end
from marketing.campaigns c
join users.accounts a on a.created_at < c.starts_at
where c.channel_id = 4 and pg_temp.r(a.id * 41 + c.id, 991) < 0.3
order by c.id, a.id;
