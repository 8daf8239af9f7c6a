-- Security and admin audit: what each admin did (product create/delete, price changes, promo
-- management, order status changes), logins, and anomalies: actions at night, bulk deletes,
-- actions from networks outside the office ranges.
with actions as (
    select al.admin_id,
           count(*) as actions,
           count(*) filter (where al.action = 'product.create') as products_created,
           count(*) filter (where al.action = 'product.delete') as products_deleted,
           count(*) filter (where al.action = 'price.change') as price_changes,
           count(*) filter (where al.action like 'promo.%') as promo_changes,
           count(*) filter (where al.action = 'order.status_change') as order_status_changes,
           count(*) filter (where extract(hour from al.occurred_at at time zone 'Europe/Berlin')
                            not between 7 and 20) as night_actions,
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
    select f.admin_id, count(*) as failed_attempts
    from admin.failed_access_attempts f
    where f.attempted_at >= :period_start and f.attempted_at < :period_end
    group by f.admin_id
)
select
    ad.id as admin_id,
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
    coalesce(a.outside_network, 0) as actions_outside_network,
    concat_ws(', ',
        case when coalesce(a.products_deleted, 0) >= 20 then 'bulk deletes' end,
        case when coalesce(a.night_actions, 0) >= 10 then 'night activity' end,
        case when coalesce(a.outside_network, 0) > 0 then 'unknown network' end,
        case when not ad.active and coalesce(a.actions, 0) > 0 then 'inactive admin acting' end)
        as anomalies
from admin.admins ad
left join actions a on a.admin_id = ad.id
left join logins l on l.admin_id = ad.id
left join failures f on f.admin_id = ad.id
where coalesce(a.actions, 0) + coalesce(l.logins, 0) + coalesce(f.failed_attempts, 0) > 0
order by (case when coalesce(a.products_deleted, 0) >= 20 or coalesce(a.outside_network, 0) > 0
          then 0 else 1 end), actions desc
