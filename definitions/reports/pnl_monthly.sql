-- Monthly P&L in EUR: revenue net of discounts, refunds for returns and cancellations,
-- write-offs, cost of goods sold, gross margin, advertising and logistics costs.
with sold as (
    select sum(oi.unit_price * oi.quantity - oi.discount) as revenue,
           sum(sk.unit_cost * oi.quantity) as cogs
    from orders.order_items oi
    join orders.orders o on o.id = oi.order_id
    join product.skus sk on sk.id = oi.sku_id
    where o.placed_at >= :period_start and o.placed_at < :period_end
      and o.status not in ('cancelled', 'pending')
),
refunded as (
    select coalesce(sum(rf.amount) filter (where rf.return_id is not null), 0) as returns,
           coalesce(sum(rf.amount) filter (where rf.return_id is null), 0) as cancellations
    from payments.refunds rf
    where rf.refunded_at >= :period_start and rf.refunded_at < :period_end
),
written_off as (
    select coalesce(sum(w.cost), 0) as write_offs
    from inventory.write_offs w
    where w.written_off_at >= :period_start and w.written_off_at < :period_end
),
advertising as (
    select coalesce(sum(a.amount), 0) as ad_spend
    from marketing.ad_spend a
    where a.day >= (:period_start)::date and a.day < (:period_end)::date
),
shipping as (
    select coalesce(sum(s.shipping_cost), 0) as logistics
    from logistics.shipments s
    where s.shipped_at >= :period_start and s.shipped_at < :period_end
),
fees as (
    select coalesce(sum(f.amount), 0) as payment_fees
    from payments.fees f
    where f.charged_at >= :period_start and f.charged_at < :period_end
)
select
    round(coalesce(sold.revenue, 0), 2) as revenue,
    round(refunded.returns, 2) as refunded_returns,
    round(refunded.cancellations, 2) as refunded_cancellations,
    round(coalesce(sold.cogs, 0), 2) as cost_of_goods,
    round(written_off.write_offs, 2) as write_offs,
    round(coalesce(sold.revenue, 0) - refunded.returns - coalesce(sold.cogs, 0)
          - written_off.write_offs, 2) as gross_margin,
    round(advertising.ad_spend, 2) as ad_spend,
    round(shipping.logistics, 2) as logistics_cost,
    round(fees.payment_fees, 2) as payment_fees,
    round(coalesce(sold.revenue, 0) - refunded.returns - coalesce(sold.cogs, 0)
          - written_off.write_offs - advertising.ad_spend - shipping.logistics
          - fees.payment_fees, 2) as contribution
from sold, refunded, written_off, advertising, shipping, fees
