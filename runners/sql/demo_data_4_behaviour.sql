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
-- Purchase sessions share their order's id and time; the others are browsing that drops off.
create temp table tmp_sessions on commit drop as
select o.id, o.account_id, o.placed_at - (5 + pg_temp.r(o.id, 801) * 35) * interval '1 minute' as started_at,
       true as purchase, o.id as order_id
from orders.orders o where pg_temp.r(o.id, 800) < 0.65 and o.status <> 'pending'
union all
select cfg.n_orders + s, case when pg_temp.r(s, 802) < 0.35 then
         1 + floor(greatest(1, ceil(cfg.n_accounts * power((d + 365) / 730.0, 1 / 0.6)) - 1)
                   * pg_temp.r(s, 803))::bigint end,
       cfg.start_ts + d * interval '1 day'
         + width_bucket(pg_temp.r(s, 804), cfg.hour_cdf) * interval '1 hour'
         + pg_temp.r(s, 805) * interval '1 hour',
       false, null
from cfg, lateral (select s, width_bucket(pg_temp.r(s, 806), cfg.day_cdf) as d
                   from generate_series(1, cfg.n_browse_sessions) s) b;

-- step: analytics.sessions
insert into analytics.sessions (id, account_id, started_at, ended_at, device, channel_id, ip_address)
select s.id, s.account_id, s.started_at, s.started_at + (2 + pg_temp.r(s.id, 810) * 40) * interval '1 minute',
       (array['desktop','mobile','mobile','tablet','app'])[1 + floor(pg_temp.r(s.id, 811) * 5)::int],
       1 + width_bucket(pg_temp.r(s.id, 812), array[0.30, 0.50, 0.65, 0.78, 0.86, 0.94]),
       ('172.16.' || (s.id % 250) || '.' || (s.id / 250) % 250)::inet
from tmp_sessions s order by s.id;

-- step: orders.orders.session_id
update orders.orders o set session_id = s.id from tmp_sessions s where s.order_id = o.id;

-- step: analytics.experiment_assignments
insert into analytics.experiment_assignments (session_id, experiment_id, variant_id, assigned_at)
select s.id, 1, case when pg_temp.r(s.id, 820) < case when s.purchase then 0.56 else 0.5 end
                     then 2 else 1 end, s.started_at
from tmp_sessions s
union all
select s.id, 2, 3 + (pg_temp.r(s.id, 821) < 0.5)::int, s.started_at
from cfg, tmp_sessions s where s.started_at >= cfg.start_ts + interval '120 days' and pg_temp.r(s.id, 822) < 0.5
union all
select s.id, 3, 5 + (pg_temp.r(s.id, 823) < 0.5)::int, s.started_at
from cfg, tmp_sessions s where s.started_at < cfg.start_ts + interval '90 days' and pg_temp.r(s.id, 824) < 0.5
order by 1, 2;

-- step: tmp.funnel
-- Drop-off at each step; the one-page checkout (variant 2) loses fewer people at payment.
create temp table tmp_funnel on commit drop as
select s.id as session_id, s.started_at, s.purchase, s.account_id,
       s.purchase or pg_temp.r(s.id, 830) < 0.62 as product_view,
       s.purchase or (pg_temp.r(s.id, 830) < 0.62 and pg_temp.r(s.id, 831) < 0.30) as add_to_cart,
       s.purchase or (pg_temp.r(s.id, 830) < 0.62 and pg_temp.r(s.id, 831) < 0.30
                      and pg_temp.r(s.id, 832) < 0.45) as checkout,
       s.purchase or (pg_temp.r(s.id, 830) < 0.62 and pg_temp.r(s.id, 831) < 0.30
                      and pg_temp.r(s.id, 832) < 0.45
                      and pg_temp.r(s.id, 833) < case when a.variant_id = 2 then 0.55 else 0.4 end) as payment
from tmp_sessions s join analytics.experiment_assignments a
  on a.session_id = s.id and a.experiment_id = 1;

-- step: analytics.funnel_events
insert into analytics.funnel_events (session_id, step, occurred_at)
select f.session_id, st.step, f.started_at + st.k * interval '2 minutes'
from tmp_funnel f,
     lateral (values (0, 'visit', true), (1, 'product_view', f.product_view),
                     (2, 'add_to_cart', f.add_to_cart), (3, 'checkout', f.checkout),
                     (4, 'payment', f.payment), (5, 'purchase', f.purchase)) st(k, step, reached)
where st.reached
order by f.session_id, st.k;

-- step: analytics.page_views
insert into analytics.page_views (session_id, path, viewed_at)
select s.id, (array['/', '/c/electronics', '/c/fashion', '/deals', '/help', '/account'])
             [1 + floor(pg_temp.r(s.id * 4 + k, 840) * 6)::int],
       s.started_at + k * interval '1 minute'
from tmp_sessions s, generate_series(1, 3) k
where k = 1 or pg_temp.r(s.id * 4 + k, 841) < 0.4
order by s.id, k;

-- step: analytics.product_views
insert into analytics.product_views (session_id, product_id, viewed_at)
select f.session_id,
       case when f.purchase and k = 1 then
              (select sk.product_id from orders.order_items oi join product.skus sk on sk.id = oi.sku_id
               where oi.order_id = f.session_id order by oi.id limit 1)
            else 1 + floor(power(pg_temp.r(f.session_id * 4 + k, 850), 1.8) * cfg.n_products)::bigint end,
       f.started_at + (2 + k) * interval '1 minute'
from cfg, tmp_funnel f, generate_series(1, 3) k
where f.product_view and (k = 1 or pg_temp.r(f.session_id * 4 + k, 851) < 0.5)
order by f.session_id, k;

-- step: analytics.searches
insert into analytics.searches (id, session_id, query, results_count, searched_at)
select s.id, s.id, q.query, case when q.zero then 0 else (5 + floor(pg_temp.r(s.id, 862) * 300))::int end,
       s.started_at + interval '30 seconds'
from tmp_sessions s,
     lateral (select pg_temp.r(s.id, 861) < 0.08 as zero) z,
     lateral (select case when z.zero then
                (array['iphnoe 15', 'adidsa sneakers', 'vaccum cleaner', 'lego milenium falcon',
                       'ps6', 'organic dog food grain free large', 'samsnug tv'])
                [1 + floor(pg_temp.r(s.id, 863) * 7)::int]
              else (array['iphone', 'sneakers', 'vacuum cleaner', 'lego', 'coffee machine',
                          'dog food', 'tv', 'headphones', 'running shoes', 'desk lamp',
                          'yoga mat', 'winter jacket', 'air fryer', 'backpack', 'perfume'])
                   [1 + floor(power(pg_temp.r(s.id, 864), 1.5) * 15)::int] end as query,
                   z.zero) q
where pg_temp.r(s.id, 860) < 0.5
order by s.id;

-- step: analytics.search_results
insert into analytics.search_results (search_id, position, product_id, clicked)
select se.id, k::smallint, 1 + floor(pg_temp.r(se.id * 8 + k, 870) * cfg.n_products)::bigint,
       pg_temp.r(se.id * 8 + k, 871) < 0.30 / k
from cfg, analytics.searches se, generate_series(1, 5) k
where se.results_count > 0
order by se.id, k;

-- step: orders.carts
insert into orders.carts (id, account_id, session_id, created_at, converted_order_id)
select f.session_id, f.account_id, f.session_id, f.started_at + interval '4 minutes',
       case when f.purchase then f.session_id end
from tmp_funnel f where f.add_to_cart order by f.session_id;

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
select v, a, s.id, s.started_at + interval '1 minute',
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
from content.article_views v
join lateral (select product_id from content.article_products p where p.article_id = v.article_id
              order by product_id limit 1) ap on true
where pg_temp.r(v.id, 950) < 0.12 + least(v.seconds_on_page, 300) / 1500.0
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

-- step: admin.audit_log
-- Normal office-hours work, plus two stories for the security report: admin 13 deletes
-- products in bulk one night, admin 27 changes prices from an unknown network.
insert into admin.audit_log (admin_id, action, entity_type, entity_id, details, ip_address, occurred_at)
select a.admin_id, a.action, split_part(a.action, '.', 1), a.entity_id, a.details, a.ip, a.at
from (
  select 1 + floor(pg_temp.r(g, 960) * 39)::int as admin_id,
         (array['product.create','product.update','price.change','price.change','promo.create',
                'promo.update','order.status_change','order.status_change','product.delete'])
           [1 + floor(pg_temp.r(g, 961) * 9)::int] as action,
         1 + floor(pg_temp.r(g, 962) * cfg.n_products)::bigint as entity_id,
         jsonb_build_object('note', 'routine') as details,
         ('10.200.' || (1 + floor(pg_temp.r(g, 963) * 4))::int || '.' || (1 + g % 200))::inet as ip,
         cfg.start_ts + width_bucket(pg_temp.r(g, 964), cfg.day_cdf) * interval '1 day'
           + (8 + pg_temp.r(g, 965) * 10) * interval '1 hour' as at
  from cfg, generate_series(1, cfg.n_audit) g
  union all
  select 13, 'product.delete', 1 + (g * 37) % cfg.n_products, jsonb_build_object('bulk', true),
         '10.200.3.13'::inet,
         cfg.anchor - interval '9 days' + interval '2 hours 10 minutes' + g * interval '20 seconds'
  from cfg, generate_series(1, 45) g
  union all
  select 27, 'price.change', 1 + (g * 53) % cfg.n_products,
         jsonb_build_object('old', 100, 'new', 1), '198.51.100.77'::inet,
         cfg.anchor - interval '4 days' + interval '23 hours' + g * interval '1 minute'
  from cfg, generate_series(1, 12) g
) a
order by a.at, a.admin_id;

-- step: admin.admin_logins
insert into admin.admin_logins (admin_id, logged_in_at, ip_address, mfa_used)
select a.id, cfg.start_ts + d * interval '1 day' + (8 + pg_temp.r(a.id * 400 + d, 970)) * interval '1 hour',
       ('10.200.' || (1 + a.id % 4) || '.' || a.id)::inet, a.id % 7 <> 0
from cfg, admin.admins a, generate_series(0, cfg.days - 1) d
where a.active and extract(isodow from cfg.start_ts + d * interval '1 day') < 6
order by 2, 1;

-- step: admin.failed_access_attempts
insert into admin.failed_access_attempts (username, admin_id, ip_address, reason, attempted_at)
select 'admin' || (1 + g % 40) || '@marketplace.example', 1 + g % 40,
       ('10.200.' || (1 + g % 4) || '.' || (1 + g % 40))::inet, 'wrong_password',
       cfg.start_ts + (g * 0.5) * interval '1 day' + interval '9 hours'
from cfg, generate_series(1, 700) g
union all
-- Brute force: bursts of attempts on guessed usernames from outside networks.
select (array['admin','root','administrator','test'])[1 + g % 4] || '@marketplace.example', null,
       ('203.0.113.' || b)::inet, 'unknown_user',
       cfg.anchor - (b * 20) * interval '1 day' + interval '3 hours' + g * interval '3 seconds'
from cfg, generate_series(1, 3) b, generate_series(1, 60) g
order by 5;

-- step: marketing.email_sends
insert into marketing.email_sends (campaign_id, account_id, sent_at, opened_at, clicked_at)
select c.id, a.id, c.starts_at + interval '8 hours',
       case when pg_temp.r(a.id * 41 + c.id, 990) < 0.35 then c.starts_at + interval '10 hours' end,
       case when pg_temp.r(a.id * 41 + c.id, 990) < 0.06 then c.starts_at + interval '10 hours 2 minutes' end
from marketing.campaigns c
join users.accounts a on a.created_at < c.starts_at
where c.channel_id = 4 and pg_temp.r(a.id * 41 + c.id, 991) < 0.3
order by c.id, a.id;
