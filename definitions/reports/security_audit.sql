-- Security and admin audit: what each admin did (product create/delete, price changes, promo
-- management, order status changes), logins, failed sign-ins (also for usernames that are
-- not admins), and anomalies: night actions, bulk deletes, actions from outside the office
-- networks, many failed sign-ins.
with actions as (
    select al.admin_id,
           count(*) as actions,
           count(*) filter (where al.action = 'product.create') as products_created,
           count(*) filter (where al.action = 'product.delete') as products_deleted,
           count(*) filter (where al.action = 'price.change') as price_changes,
           count(*) filter (where al.action like 'promo.%') as promo_changes,
           count(*) filter (where al.action = 'order.status_change') as order_status_changes,
           -- The session runs in the report's timezone: this is the local hour.
           count(*) filter (where extract(hour from al.occurred_at) not between 7 and 20)
               as night_actions,
           count(*) filter (where not (al.ip_address << '10.0.0.0/8'::cidr)) as outside_network
    from admin.audit_log al
    where al.occurred_at >= :period_start and al.occurred_at < :period_end
    group by al.admin_id
),
logins as (
    select l.admin_id, count(*) as logins, count(*) filter (where not l.mfa_used) as without_mfa
    from admin.admin_logins l
    where l.logged_in_at >= :period_start and l.logged_in_at < :period_end
    group by l.admin_id
),
failures as (
    -- admin_id is NULL for usernames that are not admins: they form one row of their own.
    select f.admin_id, count(*) as failed_attempts
    from admin.failed_access_attempts f
    where f.attempted_at >= :period_start and f.attempted_at < :period_end
    group by f.admin_id
),
subjects as (
    select ad.id as admin_id, ad.active from admin.admins ad
    union all
    select null, true
),
counted as (
    select s.admin_id,
           s.active,
           coalesce(a.actions, 0) as actions,
           coalesce(a.products_created, 0) as products_created,
           coalesce(a.products_deleted, 0) as products_deleted,
           coalesce(a.price_changes, 0) as price_changes,
           coalesce(a.promo_changes, 0) as promo_changes,
           coalesce(a.order_status_changes, 0) as order_status_changes,
           coalesce(l.logins, 0) as logins,
           coalesce(l.without_mfa, 0) as logins_without_mfa,
           coalesce(f.failed_attempts, 0) as failed_attempts,
           coalesce(a.night_actions, 0) as night_actions,
           coalesce(a.outside_network, 0) as actions_outside_network
    from subjects s
    left join actions a on a.admin_id = s.admin_id
    left join logins l on l.admin_id = s.admin_id
    left join failures f on f.admin_id is not distinct from s.admin_id
),
flagged as (
    select c.*,
           concat_ws(', ',
               case when c.products_deleted >= 20 then 'bulk deletes' end,
               case when c.night_actions >= 10 then 'night activity' end,
               case when c.actions_outside_network > 0 then 'unknown network' end,
               case when not c.active and c.actions > 0 then 'inactive admin acting' end,
               case when c.failed_attempts >= 10 then 'failed sign-ins' end) as anomalies
    from counted c
    where c.actions + c.logins + c.failed_attempts > 0
)
select
    fl.admin_id, fl.actions, fl.products_created, fl.products_deleted, fl.price_changes,
    fl.order_status_changes, fl.promo_changes, fl.logins, fl.logins_without_mfa,
    fl.failed_attempts, fl.night_actions, fl.actions_outside_network, fl.anomalies
from flagged fl
order by (fl.anomalies = ''), fl.actions desc, fl.failed_attempts desc, fl.admin_id nulls last
