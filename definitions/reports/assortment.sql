-- Assortment and category effectiveness: net revenue and units per top-level category, share
-- of SKUs that went out of stock, days in stock, and view-to-purchase conversion.
with trees as (
    -- Every category with the top-level category of its tree, at any depth.
    select cr.id, cr.top_id
    from (with recursive up(id, top_id) as (
              select c.id, c.id from product.categories c where c.parent_id is null
              union all
              select c.id, up.top_id from product.categories c join up on c.parent_id = up.id)
          select up.id, up.top_id from up) cr
),
sales as (
    select tr.top_id,
           sum(pl.net_revenue) as revenue,
           sum(pl.quantity) as units,
           count(distinct pl.order_id) as orders
    from purchase_lines pl
    join product.products p on p.id = pl.product_id
    join trees tr on tr.id = p.category_id
    where pl.placed_at >= :period_start and pl.placed_at < :period_end
    group by tr.top_id
),
stock as (
    select tr.top_id,
           count(distinct sk.id) as skus,
           count(distinct so.sku_id) as skus_out_of_stock,
           -- Seconds, exact (numeric epoch): days are divided out once, at the end.
           coalesce(sum(extract(epoch from least(coalesce(so.ended_at, :period_end),
                                                 :period_end)
                                       - greatest(so.started_at, :period_start)))
                    filter (where so.id is not null), 0) as stockout_seconds
    from product.skus sk
    join product.products p on p.id = sk.product_id
    join trees tr on tr.id = p.category_id
    left join inventory.stockouts so on so.sku_id = sk.id
        and so.started_at < :period_end
        and coalesce(so.ended_at, :period_end) > :period_start
    group by tr.top_id
),
views as (
    select tr.top_id, count(*) as product_views
    from analytics.product_views pv
    join product.products p on p.id = pv.product_id
    join trees tr on tr.id = p.category_id
    where pv.viewed_at >= :period_start and pv.viewed_at < :period_end
    group by tr.top_id
)
select
    top.name as category,
    coalesce(sa.revenue, 0) as revenue,
    coalesce(sa.units, 0) as units,
    coalesce(sa.orders, 0) as orders,
    st.skus,
    round(st.skus_out_of_stock::numeric / nullif(st.skus, 0), 4) as out_of_stock_share,
    -- (period seconds * skus - stockout seconds) / (86400 * skus): one division of exact
    -- numbers, so an exact half rounds away from zero.
    round((extract(epoch from (:period_end)::timestamptz - (:period_start)::timestamptz)
           * st.skus - st.stockout_seconds) / nullif(86400 * st.skus, 0), 1)
        as avg_days_in_stock,
    coalesce(v.product_views, 0) as product_views,
    round(coalesce(sa.orders, 0)::numeric / nullif(v.product_views, 0), 4)
        as view_to_purchase,
    case when rank() over (order by coalesce(sa.revenue, 0) desc) <= 3 then 'leader'
         when coalesce(sa.revenue, 0) < 0.2 * avg(coalesce(sa.revenue, 0)) over ()
              then 'dead zone'
         else '' end as verdict
from product.categories top
join stock st on st.top_id = top.id
left join sales sa on sa.top_id = top.id
left join views v on v.top_id = top.id
where top.parent_id is null
order by revenue desc, top.name collate "C"
